"""APScheduler glue, the headless engine, run requests and events."""
