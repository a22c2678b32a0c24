"""The queue: the only package that imports RQ (the worker's RQ class aside).

queue.py       the queue's name, the job functions by name, job meta keys, Redis errors as 503
submit.py      a classification request -> a job id: rate limit, result cache, bounded enqueue
status.py      a job id -> what its status route answers, and waiting for a job to end
cache.py       the result cache (a hit is an RQ job that is finished from the start)
liveness.py    which workers are alive and ready: the one place that counts them
recovery.py    the reaper: jobs of dead workers back on the queue, or failed after the last try
rate_limit.py  the optional per-client limit on submissions
metrics.py     job metrics kept in Redis, and the Prometheus collector that reads them
"""
