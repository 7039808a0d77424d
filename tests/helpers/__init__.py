"""Helpers the tests import: tiny real-format data, callbacks for runs, processes, the docs' examples."""
