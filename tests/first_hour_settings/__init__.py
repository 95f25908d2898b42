"""Settings modules for the first-hour tests: each one is a set-up a newcomer may have
(no LOGGING, SQLite, eventjobs not installed, TASKS not set, typos, bad values).
Commands run with them as subprocesses (`DJANGO_SETTINGS_MODULE=tests.first_hour_settings.X`)."""
