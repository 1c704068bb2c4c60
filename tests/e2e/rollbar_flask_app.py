"""A Flask app that reports to Rollbar with the real `rollbar` SDK, as the typical user wires it:
`rollbar.init(ROLLBAR_ACCESS_TOKEN, environment, endpoint=…)` and Flask's
`got_request_exception` connected to `rollbar.contrib.flask.report_exception`.

Run as a subprocess with the actions to take on the command line: `message:TEXT`
(`report_message`, level warning), `exc_info:TEXT` (`report_exc_info` of a caught ValueError),
or a path to GET (the `/api/activities/crash` route raises). It prints one JSON line: the
statuses of the GETs and where each exception was raised.
"""

import argparse
import json
import os
import sys

import rollbar
import rollbar.contrib.flask
from flask import Flask, got_request_exception

app = Flask(__name__)
RAISED = {}


@app.route("/api/activities/crash", methods=["GET"])
def data_crash():
    RAISED["crash"] = sys._getframe().f_lineno + 1
    raise RuntimeError("mock failure in the crash route")


def caught_value_error(text):
    try:
        RAISED["exc_info"] = sys._getframe().f_lineno + 1
        raise ValueError(text)
    except ValueError:
        rollbar.report_exc_info(sys.exc_info())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("actions", nargs="+")
    args = parser.parse_args()
    rollbar.init(
        os.environ["ROLLBAR_ACCESS_TOKEN"],
        environment=os.environ.get("ROLLBAR_ENVIRONMENT", "development"),
        endpoint=os.environ["ROLLBAR_ENDPOINT"],
        handler="blocking",
        timeout=10,
    )
    got_request_exception.connect(rollbar.contrib.flask.report_exception, app)
    client = app.test_client()
    statuses = []
    for action in args.actions:
        kind, _, text = action.partition(":")
        if kind == "message":
            rollbar.report_message(text, "warning")
        elif kind == "exc_info":
            caught_value_error(text)
        else:
            statuses.append(client.get(action).status_code)
    print(json.dumps({"statuses": statuses, "raised": RAISED, "file": os.path.abspath(__file__)}))


if __name__ == "__main__":
    main()
