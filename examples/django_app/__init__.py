"""A minimal Django project with a WebSocket view served by geventws (see ``views.py``)."""
