# gunicorn settings for the production command in README.md (`gunicorn -c gunicorn.conf.py ... wsgi:app`).
# The access log goes to standard output; no line of it holds a query string (persona search puts
# customers' emails and phones there), a referer or a cookie: see webapp/serving.py.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logger_class = "webapp.serving.Logger"

# A slow client (headers or an upload trickling in) holds one thread, never a whole worker: sync workers
# serve one connection each, so four slow clients stopped every page. Each thread may hold a database
# connection: workers x threads stays under PostgreSQL's max_connections (100 by default) with 4 workers.
worker_class = "gthread"
threads = 16
# The worker's main thread beats while its threads wait on clients, so this only ends a request stuck in
# the app; a client idle longer than keepalive between requests is closed.
timeout = 30
keepalive = 5
