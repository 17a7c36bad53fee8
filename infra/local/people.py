#!/usr/bin/env python3
"""People's accounts in the local stack's user pool (moto), for tests and the console.

    people.py create EMAIL --password-stdin   an account with a permanent password (read
                                              from stdin, never printed); prints its sub
    people.py demo                            the demo people, with the documented local
                                              passwords (printed: they are local only)
    people.py token EMAIL --password-stdin    signs in as the app client does; prints the
                                              access token

An account only signs a person in: what the person may do (platform admin, or a tenant's
admin, supervisor or agent) is a membership kept in the table under the account's `sub`.
On AWS, accounts are made the same way with `aws cognito-idp admin-create-user`
(docs/operations.md); this script talks only to the local stack (`.local/stack.env`).
"""

import argparse
import sys

import stack

# The demo people and their local passwords (they satisfy the template's password policy).
DEMO_PEOPLE = [
    ("admin@demo.example.com", "Local-demo-admin-1", "platform admin"),
    ("supervisor@demo.example.com", "Local-demo-supervisor-1", "supervisor of the demo tenant"),
]


def cognito():
    env = stack.read_env()
    return stack.clients(env["AWS_ENDPOINT_URL"])["cognito-idp"], env


def create(email, password):
    """Makes the account (or finds it) and sets its permanent password; returns its sub."""
    client, env = cognito()
    pool = env["COGNITO_USER_POOL_ID"]
    created = False
    try:
        client.admin_create_user(
            UserPoolId=pool,
            Username=email,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
        created = True
    except client.exceptions.UsernameExistsException:
        pass
    try:
        client.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    except client.exceptions.InvalidPasswordException:
        if created:  # no account left behind without a usable password
            client.admin_delete_user(UserPoolId=pool, Username=email)
        raise SystemExit(
            f"{email}: the password does not meet the pool's policy "
            "(12 or more characters with upper and lower case letters, a digit and a symbol)"
        )
    user = client.admin_get_user(UserPoolId=pool, Username=email)
    return next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")


def token(email, password):
    client, env = cognito()
    try:
        answer = client.initiate_auth(
            ClientId=env["COGNITO_CLIENT_ID"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except (client.exceptions.NotAuthorizedException, client.exceptions.UserNotFoundException):
        raise SystemExit(f"{email}: wrong e-mail or password")
    return answer["AuthenticationResult"]["AccessToken"]


def read_password():
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("no password on stdin")
    return password


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("create", "token"):
        p = sub.add_parser(name)
        p.add_argument("email")
        p.add_argument("--password-stdin", action="store_true", required=True, help="read the password from stdin")
    sub.add_parser("demo")
    args = parser.parse_args()

    if args.command == "create":
        print(f"{args.email} sub={create(args.email, read_password())}")
    elif args.command == "token":
        print(token(args.email, read_password()))
    else:
        for email, password, role in DEMO_PEOPLE:
            print(f"{email} password={password} sub={create(email, password)} ({role})")


if __name__ == "__main__":
    sys.exit(main())
