"""Shared code of the faulty test pipelines: `pipeline` is a clean backend every variant builds on."""
