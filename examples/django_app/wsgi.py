"""The WSGI application of the example Django project.

From the repository root: ``gunicorn -k geventws.gunicorn.Worker examples.django_app.wsgi``.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")

application = get_wsgi_application()
