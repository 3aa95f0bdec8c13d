"""Benchmarks of Billable on PostgreSQL: `make bench`, or `python -m bench [NAME ...] [--entries N]`.

One module per benchmark (ingest, billing_run, reports, pdf, web, csv_export), each measuring the product's
code next to a baseline in the same run; generator.py makes the data, harness.py measures, table.py prints.
"""
