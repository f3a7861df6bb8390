"""Operations: metrics, health checks and the job context that log lines carry."""
