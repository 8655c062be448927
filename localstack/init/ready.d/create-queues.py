#!/usr/bin/env python3
"""Create the payment-events queue and its dead-letter queue.

Runs in two places:
- as a LocalStack init hook, e.g. in docker-compose: LocalStack exec()s the
  *.py files in /etc/localstack/init/ready.d inside its own process (boto3 is
  there), with empty globals, so __name__ is not "__main__" then;
- on the host against a host-mode LocalStack, from scripts/lib.sh, with the
  project venv's python.

Idempotent: running it again leaves the queues as they are (and re-applies the
attributes if someone changed them). On success it prints exactly two lines on
stdout, meant to be parsed by scripts and pasted into a shell:

    SQS_DLQ_URL=<url>
    SQS_QUEUE_URL=<url>

Environment (all optional): AWS_ENDPOINT_URL (http://localhost:4566),
AWS_REGION (us-east-1), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (test/test),
QUEUE_NAME (payment-events), DLQ_NAME (payment-events-dlq).
"""

import json
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

# LocalStack's init runner exec()s this file with empty globals: __name__ is
# then "builtins", not "__main__".
RUN_AS_SCRIPT = __name__ == "__main__"

MAX_RECEIVE_COUNT = 5  # redrive to the DLQ after this many receives
VISIBILITY_TIMEOUT = 30  # seconds; the consumer extends it while sending


def default_endpoint():
    if not RUN_AS_SCRIPT:
        # Inside LocalStack: its own gateway, whatever port it listens on.
        try:
            from localstack import config

            return config.internal_service_url()
        except Exception:
            pass
    return "http://localhost:4566"


def sqs_client():
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or default_endpoint()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=region,
        # Explicit credentials: a developer's own AWS profile must never be
        # picked up (or needed) for the local stack.
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
        # The first request to a fresh LocalStack can take a few seconds.
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 5, "mode": "standard"}),
    )


def is_already_exists(err):
    code = err.response.get("Error", {}).get("Code", "")
    return code in ("QueueAlreadyExists", "QueueNameExists", "AWS.SimpleQueueService.QueueNameExists")


def ensure_queue(sqs, name, attributes):
    """Create the queue, or bring an existing one to the wanted attributes."""
    try:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as err:
        # CreateQueue on an existing queue with different attributes fails;
        # that is not an error for us: update the attributes instead.
        if not is_already_exists(err):
            raise
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def main():
    queue_name = os.environ.get("QUEUE_NAME") or "payment-events"
    dlq_name = os.environ.get("DLQ_NAME") or "payment-events-dlq"
    sqs = sqs_client()

    # Connection refused is retried for a short while: on the host the hook may
    # race a gateway that is still binding.
    deadline = time.monotonic() + 30
    while True:
        try:
            dlq_url = ensure_queue(sqs, dlq_name, {})
            break
        except EndpointConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    queue_url = ensure_queue(
        sqs,
        queue_name,
        {
            "RedrivePolicy": json.dumps(redrive),
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
        },
    )

    print(f"SQS_DLQ_URL={dlq_url}")
    print(f"SQS_QUEUE_URL={queue_url}")
    sys.stdout.flush()


if RUN_AS_SCRIPT:
    try:
        main()
    except Exception as exc:  # one readable line instead of a traceback
        print(f"create-queues: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
else:
    # In LocalStack's process: an exception marks the init script as failed in
    # its log; sys.exit() there would raise SystemExit into LocalStack itself.
    main()
