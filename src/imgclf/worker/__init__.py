"""The worker process and the task functions: the only code a job may run.

process.py  `imgclf worker`: load the models once, then take jobs, reconnecting to a lost Redis
context.py  what a worker loads at start (models on their runtimes, the catalogue) and passes to tasks
rq_worker.py  RQ's SimpleWorker, refusing any job that is not one of `tasks.TASKS`
upkeep.py   the heartbeat and the reaper of dead workers' jobs, in a thread beside the jobs
tasks.py    the job functions
"""
