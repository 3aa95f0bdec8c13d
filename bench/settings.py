"""Settings for benchmark runs: the project's settings as production runs them, on a bench database.

DEBUG is off so Django does not keep every query in memory (that alone would make peak memory grow with
the number of entries); the HTTPS redirects and secure cookies of production are off because the load
tool talks plain HTTP on loopback; connections are kept for 60 s as the deployment section advises; mail goes
nowhere; static files are served from the finders so no
collectstatic step is needed.
"""

import os
import tempfile
import warnings

os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "billable-bench-key-not-for-production")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# As the README's deployment section recommends: web processes keep their database connection for a minute
# instead of opening one per request.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")

from config.settings import *  # noqa: E402, F403

DEBUG = False
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), "billable-bench-media")
# WhiteNoise looks for collected static files, which the finders make unnecessary here.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
# Bench users sign in through sessions made by the harness, never by typing a password.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
