"""Running a show as a job, on top of the composition root: check, osc-map, bench, soak, the latency
test, the service and supervisor, state reset."""
