"""A base for commands with sub-commands whose help lists one per line."""

import argparse

from django.core.management.base import BaseCommand


class SubcommandCommand(BaseCommand):
    """Keeps the line breaks of `help` (one line per sub-command) in --help."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(prog_name, subcommand,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     **kwargs)
