"""The admin console in headless Chromium, as a person uses it.

Starts `scimlet serve` with an admin token on a fresh database, provisions
users and a group through SCIM as an identity provider would, then drives
Debian's `chromium` through `chromedriver` (Selenium): sign in, find a SCIM
user, see the refusal of an edit on a SCIM-managed group, create and revoke
a token, page through the audit log, and check the pages on a phone-sized
window and from the keyboard. Screenshots of the main views are written to
the directory given with --screenshots.

    python tests/console/browse.py --bin target/debug/scimlet --screenshots target/console-screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

ADMIN_TOKEN = "browser-admin-token-0123456789abcdef"
USERS = 60  # more audit records than one page of the console shows (50)


def start_server(binary: str, workdir: str) -> tuple[subprocess.Popen, str, str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "SCIMLET_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--db", os.path.join(workdir, "scimlet.db")],
        stdout=subprocess.PIPE,
        stderr=open(os.path.join(workdir, "stderr"), "w"),
        text=True,
        env=env,
    )
    origin = tenant = token = None
    deadline = time.time() + 120
    while time.time() < deadline and not (origin and tenant and token):
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("scimlet listening on "):
            origin = line.split(" on ", 1)[1].strip()
        elif line.startswith("Tenant URL:"):
            tenant = line.split(":", 1)[1].strip()
        elif line.startswith("Token:"):
            token = line.split(":", 1)[1].strip()
    if not (origin and tenant and token):
        proc.kill()
        sys.exit(f"scimlet did not start; stderr:\n{Path(workdir, 'stderr').read_text()}")
    return proc, origin, tenant, token


def scim(tenant: str, token: str, method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        tenant + path,
        method=method,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
            "User-Agent": "Okta SCIM Client 1.0.0",
        },
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def browser(chromium: str, chromedriver: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.implicitly_wait(5)
    return driver


def go(driver: webdriver.Chrome, action) -> None:
    """Runs an action that loads a page (a click on a link or a button, a
    form sent with Enter) and waits until the new page replaced the old one:
    reading right after the click would otherwise see the old page, as it
    does on a busy machine."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(old))


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print(f"ok - {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="the scimlet binary")
    parser.add_argument("--screenshots", required=True, help="directory for the screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as workdir:
        proc, origin, tenant, token = start_server(args.bin, workdir)
        driver = None
        try:
            ids = []
            for i in range(USERS):
                user = scim(
                    tenant,
                    token,
                    "POST",
                    "/Users",
                    {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": f"person{i:03}@example.com",
                        "name": {"givenName": "Person", "familyName": f"Number {i:03}"},
                        "emails": [{"value": f"person{i:03}@example.com", "primary": True}],
                    },
                )
                ids.append(user["id"])
            scim(
                tenant,
                token,
                "POST",
                "/Groups",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "Engineering",
                    "members": [{"value": i} for i in ids[:5]],
                },
            )

            driver = browser(args.chromium, args.chromedriver)
            find = driver.find_element

            # Sign in: a wrong token is refused, the right one opens the console.
            driver.get(origin + "/admin")
            check("/admin/login" in driver.current_url, "signed out, the console asks to sign in")
            driver.save_screenshot(str(shots / "sign-in.png"))
            find(By.ID, "token").send_keys("wrong token")
            go(driver, find(By.CSS_SELECTOR, "form button[type=submit]").click)
            check("not the admin token" in find(By.CSS_SELECTOR, "[role=alert]").text, "a wrong token is refused")
            go(driver, lambda: find(By.ID, "token").send_keys(ADMIN_TOKEN + Keys.ENTER))
            check(find(By.TAG_NAME, "h1").text == "Accounts", "the admin token signs in")
            cookie = driver.get_cookie("scimlet_console")
            check(cookie is not None and cookie["httpOnly"] and cookie.get("sameSite") == "Strict",
                  "the session cookie is HttpOnly and SameSite=Strict")
            go(driver, find(By.LINK_TEXT, "default").click)

            # Find a SCIM user by search.
            check(find(By.TAG_NAME, "h1").text == "Users", "the account opens on its users")
            search = find(By.ID, "search")
            search.send_keys("person042")
            go(driver, find(By.CSS_SELECTOR, "form[role=search] button").click)
            rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
            check(len(rows) == 1 and "person042@example.com" in rows[0].text and "SCIM" in rows[0].text,
                  "search finds the SCIM user, marked SCIM")
            driver.save_screenshot(str(shots / "users.png"))
            go(driver, rows[0].find_element(By.TAG_NAME, "a").click)
            check("Managed by SCIM" in find(By.CSS_SELECTOR, ".rule").text, "the user's page says SCIM manages it")

            # A SCIM-managed group: its rule shown, an edit refused.
            go(driver, find(By.LINK_TEXT, "Groups").click)
            go(driver, find(By.LINK_TEXT, "Engineering").click)
            check("Managed by SCIM" in find(By.ID, "rules").text, "the group's page shows why edits are refused")
            check(len(driver.find_elements(By.CSS_SELECTOR, "table tbody tr")) == 5, "the group's members are listed")
            name = find(By.ID, "name")
            name.clear()
            name.send_keys("Renamed in the console")
            go(driver, find(By.XPATH, "//button[text()='Rename']").click)
            alert = find(By.CSS_SELECTOR, "[role=alert]").text
            check("Refused" in alert and "managed by SCIM" in alert, "renaming a SCIM group shows the refusal")
            check(find(By.TAG_NAME, "h1").text == "Engineering", "and the group keeps its name")
            driver.save_screenshot(str(shots / "group-refused.png"))

            # Tokens: create one (shown once), then revoke it.
            go(driver, find(By.LINK_TEXT, "Tokens").click)
            find(By.ID, "token-name").send_keys("okta-production")
            go(driver, find(By.XPATH, "//button[text()='Create token']").click)
            secret = find(By.ID, "secret").get_attribute("value")
            check(secret.startswith("scimlet_"), "a new token is shown")
            driver.save_screenshot(str(shots / "token-created.png"))
            go(driver, find(By.LINK_TEXT, "Tokens").click)
            check(secret not in driver.page_source, "and shown only once")
            row = find(By.XPATH, "//tr[td[text()='okta-production']]")
            go(driver, row.find_element(By.XPATH, ".//button[starts-with(normalize-space(.), 'Revoke')]").click)
            check("The token was revoked." in find(By.CSS_SELECTOR, "[role=status]").text, "revoking says so")
            row = find(By.XPATH, "//tr[td[text()='okta-production']]")
            check("Revoked" in row.text, "and the token is listed as revoked")
            driver.save_screenshot(str(shots / "tokens.png"))

            # The audit log, page by page.
            go(driver, find(By.LINK_TEXT, "Audit log").click)
            first = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
            check(len(first) == 50, "the audit log shows 50 records a page")
            first_row = first[0].text
            driver.save_screenshot(str(shots / "audit.png"))
            go(driver, find(By.LINK_TEXT, "Next page").click)
            second = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
            check(len(second) > 0 and second[0].text != first_row, "the next page shows later records")
            go(driver, lambda: find(By.ID, "f-operation").send_keys("token.revoke" + Keys.ENTER))
            filtered = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
            check(len(filtered) == 1 and "token.revoke" in filtered[0].text, "the audit log filters by operation")

            # Keyboard and labels: the first Tab reaches the skip link, and
            # every field has a label.
            go(driver, find(By.LINK_TEXT, "Users").click)
            find(By.TAG_NAME, "body").send_keys(Keys.TAB)
            check(driver.switch_to.active_element.text == "Skip to content", "the first Tab reaches the skip link")
            for page in ("users", "groups", "tokens", "audit"):
                label = {"users": "Users", "groups": "Groups", "tokens": "Tokens", "audit": "Audit log"}[page]
                go(driver, find(By.LINK_TEXT, label).click)
                for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select"):
                    field_id = field.get_attribute("id")
                    labels = driver.find_elements(By.CSS_SELECTOR, f"label[for='{field_id}']") if field_id else []
                    if not labels:
                        raise AssertionError(f"{page}: a field without a label: {field.get_attribute('outerHTML')}")
            print("ok - every field of every page has a label")

            # A phone: nothing wider than the screen but the tables' own scroll.
            driver.set_window_size(375, 740)
            for page, shot in (("Users", "phone-users.png"), ("Tokens", "phone-tokens.png")):
                go(driver, find(By.LINK_TEXT, page).click)
                overflow = driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                check(overflow <= 0, f"{page} fits a 375 px wide screen")
                driver.save_screenshot(str(shots / shot))

            # Signing out ends the session.
            go(driver, find(By.XPATH, "//button[text()='Sign out']").click)
            driver.get(origin + "/admin")
            check("/admin/login" in driver.current_url, "after signing out the console asks to sign in again")
        except Exception:
            if driver is not None:
                driver.save_screenshot(str(shots / "failure.png"))
                Path(shots / "failure.html").write_text(driver.page_source)
            print(Path(workdir, "stderr").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            if driver is not None:
                driver.quit()
            proc.kill()
            proc.wait()
    print(f"screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
