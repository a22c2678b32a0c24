"""The queue: the only package that imports RQ (the worker's RQ class aside).

queue.py        the queue's name, the job functions by name, job meta keys, Redis errors as 503
submit.py       a classification order -> a job id: rate limit, result cache, in-flight reuse, bounded enqueue
status.py       a job id -> the job, what the lesson's status route answers, and waiting for a job to end
resource.py     a job -> the /api/v1 job resource (status, position, eta, timings, result, error, links)
results.py      the one shape of a stored result, and the lesson's view of it
uploads.py      uploaded photos in Redis, by SHA-256, bounded, deleted with their last job
cancel.py       DELETE: a queued job never runs, a result and its upload are deleted
idempotency.py  Idempotency-Key: the same key answers with the same job
webhooks.py     callback URLs checked against the allow-list (no SSRF), signed, delivered in the background
eta.py          how long the ready workers need for some jobs (Retry-After, eta_seconds)
cache.py        the result cache (a hit is an RQ job that is finished from the start)
liveness.py     which workers are alive (the reaper asks) and ready (every count of workers asks)
comparisons.py  one photo classified by several models: one job per model, grouped
recovery.py     the reaper: jobs of dead workers back on the queue, or failed after the last try
rate_limit.py   the optional per-client limit on submissions
metrics.py      job metrics kept in Redis, and the Prometheus collector that reads them
"""
