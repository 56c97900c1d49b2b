"""Batch runs and their records: the papermill suite runner and the CSV result tables beside the paper."""
