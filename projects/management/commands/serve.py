"""Start the django-q2 worker and the web server together; Ctrl-C stops both."""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from projects.demo_logins import demo_logins


class Command(BaseCommand):
    help = "Run the background worker (qcluster) and the web server until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port for the web server")

    def handle(self, *args, addr, **options):
        python = sys.executable
        worker = subprocess.Popen([python, "manage.py", "qcluster"])
        web = subprocess.Popen([python, "manage.py", "runserver", addr, "--noreload"])
        self.stdout.write(self.style.SUCCESS(f"\nBillable is running at http://{addr}/"))
        logins = demo_logins()
        if logins:
            self.stdout.write("Demo logins (password in brackets):")
            for role, username, password in logins:
                self.stdout.write(f"  {role:<16} {username}  ({password})")
        self.stdout.write("Press Ctrl-C to stop the worker and the web server.\n")
        try:
            while worker.poll() is None and web.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in (web, worker):
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in (web, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
            self.stdout.write("Stopped.")
