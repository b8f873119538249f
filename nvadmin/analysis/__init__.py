"""Reading the log for patterns: insights, flag rules, reports."""
