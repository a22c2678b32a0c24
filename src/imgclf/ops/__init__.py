"""Running the service: the processes, the embedded Redis, health checks, preparation, logging.

supervisor.py      `imgclf serve`: Redis, workers and web as children, restarted when they die
processes.py       starting `imgclf web` / `imgclf worker` children and waiting until they serve
embedded_redis.py  a real redis-server for `serve` and the tests, on a private unix socket
healthcheck.py     `imgclf healthcheck`: the container health checks
prepare.py         `imgclf prepare`: fill the catalogue and the model cache
logs.py            one log format for every process, with the job id on each line
remote.py          `imgclf classify --url`: a client of the service's /api/v1
progress.py        progress bars of `prepare` and `bench`, drawn only on a terminal
"""
