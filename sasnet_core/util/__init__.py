"""The floor every other subpackage stands on: errors, vocabularies, user folders, logging,
cancellation and progress. Imports nothing else of ``sasnet_core``."""
