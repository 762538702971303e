# gunicorn settings for the production command in README.md (`gunicorn -c gunicorn.conf.py ... wsgi:app`).
# The access log goes to standard output; no line of it holds a query string (persona search puts
# customers' emails and phones there), a referer or a cookie: see webapp/serving.py.
accesslog = "-"
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
logger_class = "webapp.serving.Logger"
