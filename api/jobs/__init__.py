"""Analysis jobs, one job a module.

- :mod:`api.jobs.core`: the core path the jobs call (:class:`Core`, :func:`default_core`)
  and how a failure is told to the user (:func:`classify`, :data:`ERROR_STATUS`);
- :mod:`api.jobs.artefacts`: the files an analysis may serve (:data:`ARTEFACTS`) and the
  analysis id pattern (:data:`ID_RE`);
- :mod:`api.jobs.progress`: progress written to the job's row, and the shutdown signal;
- :mod:`api.jobs.runner`: the thread pool, job takeover, heartbeat, execute and write.
"""

from api.jobs.runner import JobRunner

__all__ = ["JobRunner"]
