"""Workflow definitions and the pure helpers beside them (deterministic; no I/O).

dispatch.py is the exception: client-side code (the API and activities) that starts
webhook deliveries; workflow code never imports it.
"""
