"""What `make demo` runs (through demo_blog/run.py): find or start PostgreSQL, prepare the
demo database, and run the web server, a worker and the consumers as one process tree."""
