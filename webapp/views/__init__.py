"""The web views: a blueprint per part of the app (sign-in, personas, audiences, the wizard, the imports). Thin:
parse the request, call the core (webapp.importer.service), render (webapp.render)."""
