"""The offline plan: the real program under the mock engine, its records, renders and reports."""
