"""Code generated from resources/ by packaging/compile_resources.py; do not edit."""
