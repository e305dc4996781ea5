"""Running a show as a job: check, bench, soak, the latency test, the service and supervisor."""
