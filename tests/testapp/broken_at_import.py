"""A module whose import fails with an error of its own (not an ImportError)."""

raise RuntimeError("broken_at_import: this module cannot be imported")
