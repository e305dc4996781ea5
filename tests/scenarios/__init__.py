"""The acceptance scenarios (a package, so that pytest names this folder's conftest scenarios.conftest and
the older tests' `from conftest import ...` keeps finding tests/conftest.py)."""
