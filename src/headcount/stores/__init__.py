"""Ports (``ControlStore``, ``LiveStore``) and their adapters, chosen by URL."""
