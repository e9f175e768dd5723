"""/vwatch.json, the board's settings for reporting over MQTT (vwatch.mqtt, docs/mqtt.md).

    settings = mqtt_settings("mqtt://pump-3:pw@10.0.0.5:1883", wifi=("plant-wifi", "pw"))
    install_settings(board, settings, umqtt_dir=None, say=print)   # during `deploy --mqtt`

The file holds the broker's password and the Wi-Fi password, so nothing here prints either:
`describe` is what the user sees. The model file never holds them.
"""

import json
import os
import re
from pathlib import Path

from .board import BoardError
from .broker import parse_url

SETTINGS = "/vwatch.json"
UMQTT = ("/lib/umqtt/simple.py", "/lib/umqtt/simple.mpy")
BOARD_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # one MQTT topic level, no wildcards


class SettingsError(BoardError):
    pass


def mqtt_settings(url, board_id=None, wifi=None, summary_s=5):
    """The settings dict for a broker URL (mqtt://user:password@host:port or mqtts://)."""
    u = parse_url(url)
    board_id = board_id or u.user
    if not board_id:
        raise SettingsError("no board id: give the board's MQTT user in the URL "
                            "(mqtt://pump-3:password@host) or --board-id")
    if not BOARD_ID.match(board_id):
        raise SettingsError("board id %r: use 1-64 letters, digits, '-', '_' or '.' (it is a "
                            "topic level: vibrawatch/<id>/...)" % board_id)
    if u.user and not u.password and not os.environ.get("VIBRAWATCH_MQTT_PASSWORD"):
        raise SettingsError("the broker URL has a user but no password: give it in the URL or "
                            "in $VIBRAWATCH_MQTT_PASSWORD")
    mqtt = {"host": u.host, "port": u.port, "id": board_id, "tls": u.tls,
            "summary_s": summary_s}
    if u.user:
        mqtt["user"] = u.user
        mqtt["password"] = u.password or os.environ["VIBRAWATCH_MQTT_PASSWORD"]
    settings = {"mqtt": mqtt}
    if wifi:
        ssid, password = wifi
        settings["wifi"] = {"ssid": ssid, "password": password}
    return settings


def describe(settings):
    """What the settings say, without a secret."""
    m = settings["mqtt"]
    text = "board %s reports to %s://%s%s:%d" % (
        m["id"], "mqtts" if m["tls"] else "mqtt", m["user"] + "@" if m.get("user") else "",
        m["host"], m["port"])
    if m.get("password"):
        text += " (password set)"
    if "wifi" in settings:
        text += ", Wi-Fi %r" % settings["wifi"]["ssid"]
    return text


def install_settings(board, settings, umqtt_dir=None, say=print):
    """Write /vwatch.json atomically and make sure umqtt.simple is on the board."""
    if not any(board.exists(p) for p in UMQTT):
        if umqtt_dir is None:
            raise SettingsError(
                "umqtt.simple is not on the board, and vwatch needs it to report over MQTT: "
                "install it with `mpremote connect PORT mip install umqtt.simple` (the host "
                "needs internet), or pass --umqtt DIR with micropython-lib's umqtt folder")
        src = Path(umqtt_dir) / "simple.py"
        if not src.is_file():
            raise SettingsError("--umqtt %s holds no simple.py: give micropython-lib's "
                                "umqtt folder (micropython/umqtt.simple/umqtt)" % umqtt_dir)
        board.makedirs("/lib/umqtt")
        board.put(src.read_bytes(), "/lib/umqtt/simple.py")
        say("installed umqtt.simple from %s" % umqtt_dir)
    board.put(json.dumps(settings).encode(), SETTINGS + ".new")
    board.rename(SETTINGS + ".new", SETTINGS)
    say("wrote %s: %s" % (SETTINGS, describe(settings)))
