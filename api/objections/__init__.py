"""Objections and credit repair (work plan item 5): the workflow, its figures and the banks' change feed."""
