"""MQTT brokers on this computer's loopback, for tests, `demo --fleet` and the load benchmark.

    with Mosquitto(folder, users={"pump-1": "pw1", "fleet": "pw"}, readers=["fleet"]) as b:
        b.url("pump-1", "pw1")      # mqtt://pump-1:pw1@127.0.0.1:PORT
        b.stop(); b.start()         # a broker restart; b.pause() / b.resume(): SIGSTOP/SIGCONT

Mosquitto gets a password file and an ACL in which every board user may write only under
vibrawatch/<its user name>/ and readers may read vibrawatch/#; persistence is on, so a
subscriber's session and its queued QoS 1 messages survive a restart (as a plant's should).
AmqttBroker is the embedded Python broker (amqtt, PyPI) `demo --fleet` falls back to where no
Mosquitto is installed: anonymous, loopback only, no ACL.
"""

import base64
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .errors import VibrawatchError

TOPIC_ROOT = "vibrawatch"


@dataclass
class BrokerURL:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    tls: bool = False

    def __str__(self):  # never shows the password
        user = self.user + "@" if self.user else ""
        return "%s://%s%s:%d" % ("mqtts" if self.tls else "mqtt", user, self.host, self.port)


def parse_url(text):
    """mqtt://[user[:password]@]host[:port] or mqtts://... -> BrokerURL (ValueError if not)."""
    u = urllib.parse.urlsplit(text)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise VibrawatchError("broker %r is not a URL like mqtt://user:password@host:1883 (or "
                              "mqtts:// for TLS)" % _hide_password(text))
    try:
        port = u.port
    except ValueError:
        raise VibrawatchError("broker URL %s: the port is not a number"
                              % _hide_password(text)) from None
    tls = u.scheme == "mqtts"
    return BrokerURL(u.hostname, port or (8883 if tls else 1883),
                     urllib.parse.unquote(u.username) if u.username else None,
                     urllib.parse.unquote(u.password) if u.password else None, tls)


def _hide_password(text):
    u = urllib.parse.urlsplit(text)
    if u.password:
        return text.replace(":" + u.password + "@", ":***@")
    return text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10.0, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def password_line(user, password, iterations=101):
    """One line of a Mosquitto 2 password file: PBKDF2-SHA512 ($7$), as mosquitto_passwd."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return "%s:$7$%d$%s$%s" % (user, iterations, base64.b64encode(salt).decode(),
                               base64.b64encode(digest).decode())


def terminate(proc):
    """SIGTERM (a broker saves its sessions first), SIGKILL if it is not gone in 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def find_mosquitto():
    """The mosquitto executable (PATH, then /usr/sbin where Debian puts it), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        path = Path(folder) / "mosquitto"
        if os.access(path, os.X_OK):
            return str(path)
    return None


class Mosquitto:
    """A Mosquitto on 127.0.0.1 with users, an ACL and persistence (see the module doc)."""

    def __init__(self, folder, users, readers=(), port=None, exe=None, max_queued=10000):
        self.exe = exe or find_mosquitto()
        if not self.exe:
            raise VibrawatchError("mosquitto is not installed: apt-get install mosquitto")
        self.folder = Path(folder)
        self.users = dict(users)
        self.readers = list(readers)
        self.port = port or free_port()
        self.max_queued = max_queued
        self.proc = None
        self._write_config()

    def url(self, user=None, password=None):
        if user and password is None:
            password = self.users[user]
        cred = ""
        if user:
            cred = urllib.parse.quote(user, safe="") + ":" + urllib.parse.quote(password,
                                                                                safe="") + "@"
        return "mqtt://%s127.0.0.1:%d" % (cred, self.port)

    def _write_config(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "passwd").write_text(
            "".join(password_line(u, p) + "\n" for u, p in self.users.items()))
        acl = ["# each board writes only under its own id (its user name)",
               "pattern write %s/%%u/#" % TOPIC_ROOT, ""]
        for reader in self.readers:
            acl += ["user %s" % reader, "topic read %s/#" % TOPIC_ROOT, ""]
        (self.folder / "acl").write_text("\n".join(acl))
        for name in ("passwd", "acl"):
            os.chmod(self.folder / name, 0o600)  # mosquitto 2.0 warns about readable secrets
        (self.folder / "mosquitto.conf").write_text("\n".join([
            "listener %d 127.0.0.1" % self.port,
            # started as root, Mosquitto would switch to user `mosquitto`, who cannot read
            # this folder: stay whoever started it
            "user %s" % pwd.getpwuid(os.getuid()).pw_name,
            "allow_anonymous false",
            "password_file %s" % (self.folder / "passwd"),
            "acl_file %s" % (self.folder / "acl"),
            "persistence true",
            "persistence_location %s/" % self.folder,
            "autosave_interval 1",
            "max_queued_messages %d" % self.max_queued,
            "log_dest file %s" % (self.folder / "mosquitto.log"),
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "",
        ]))

    def start(self):
        if self.proc and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen([self.exe, "-c", str(self.folder / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for_port(self.port):
            self.stop()
            raise VibrawatchError("mosquitto did not start on port %d: see %s"
                                  % (self.port, self.folder / "mosquitto.log"))
        return self

    def stop(self):
        """A clean shutdown (SIGTERM): Mosquitto saves its persistent sessions first."""
        if self.proc and self.proc.poll() is None:
            if self.paused:
                self.resume()
            terminate(self.proc)
        self.proc = None

    paused = False

    def pause(self):
        """SIGSTOP: the broker is there (connections stay open) but answers nothing."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def log(self):
        path = self.folder / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AmqttBroker:
    """amqtt's embedded broker in a child Python process on 127.0.0.1 (anonymous, no ACL)."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    def url(self, user=None, password=None):
        cred = "%s:%s@" % (user, password) if user else ""
        return "mqtt://%s127.0.0.1:%d" % (cred, self.port)

    def start(self):
        code = (
            "import asyncio\n"
            "from amqtt.broker import Broker\n"
            "cfg = {'listeners': {'default': {'type': 'tcp', 'bind': '127.0.0.1:%d'}},\n"
            "       'plugins': {'amqtt.plugins.authentication.AnonymousAuthPlugin':\n"
            "                   {'allow_anonymous': True}}}\n"
            "async def main():\n"
            "    b = Broker(cfg)\n"
            "    await b.start()\n"
            "    await asyncio.Event().wait()\n"
            "asyncio.run(main())\n" % self.port)
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_for_port(self.port, timeout=30):
            self.stop()
            raise VibrawatchError("the embedded amqtt broker did not start on port %d"
                                  % self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            terminate(self.proc)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
