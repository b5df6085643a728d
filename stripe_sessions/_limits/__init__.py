"""Rate budgets shared by calls: the in-process limiter and the Redis one for many processes."""
