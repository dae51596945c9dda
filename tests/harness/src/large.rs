//! One account above every cap of the real stores (1,000 entries a scan,
//! 10,000 writes a commit), replayed against any [`Target`]: paging past
//! the scan cap, member changes larger than a commit refused cleanly, and
//! deletes larger than a commit answered at once with nothing stale
//! visible. Generated rather than written out, since its requests number
//! in the thousands of resources.

use serde_json::{Value, json};

use crate::{Target, Vars, VectorRequest};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Users of the account.
const USERS: usize = 5_100;
/// Groups user 0 is put in: more than one commit can take it out of.
const GROUPS: usize = 3_400;
/// Member changes one request may make under the contract's floor of
/// 10,000 writes a commit: (10,000 - 16) / 3.
const BUDGET: usize = 3_328;

struct Client<'t> {
    target: &'t mut dyn Target,
    vars: &'t Vars,
}

impl Client<'_> {
    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut headers = vec![("Authorization".to_owned(), format!("Bearer {}", self.vars.token))];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
        }
        let request = VectorRequest {
            method: method.to_owned(),
            path: format!("{}{path}", self.vars.base),
            headers,
            body: body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default(),
        };
        let response = self.target.send(&request).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or(Value::Null)
        };
        (response.status, value)
    }

    fn expect(&mut self, method: &str, path: &str, body: Option<&Value>, status: u16) -> Value {
        let (got, value) = self.send(method, path, body);
        assert_eq!(got, status, "{method} {path}: {value}");
        value
    }

    /// Creates resources through Bulk, 1,000 a request; returns their ids.
    fn bulk_create(&mut self, endpoint: &str, bodies: Vec<Value>) -> Vec<String> {
        let mut ids = Vec::new();
        for chunk in bodies.chunks(1000) {
            let ops: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, data)| json!({"method": "POST", "path": format!("/{endpoint}"), "bulkId": format!("b{i}"), "data": data}))
                .collect();
            let response = self.expect("POST", "/Bulk", Some(&json!({"schemas": [BULK], "Operations": ops})), 200);
            for op in response["Operations"].as_array().unwrap() {
                assert_eq!(op["status"], "201", "{op}");
                ids.push(op["location"].as_str().unwrap().rsplit('/').next().unwrap().to_owned());
            }
        }
        ids
    }

    fn patch_members(&mut self, group: &str, op: &str, users: &[String]) -> (u16, Value) {
        let value: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
        let body = json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": value}]});
        self.send("PATCH", &format!("/Groups/{group}"), Some(&body))
    }

    fn members(&mut self, group: &str) -> Vec<String> {
        let g = self.expect("GET", &format!("/Groups/{group}"), None, 200);
        g["members"]
            .as_array()
            .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    fn groups_of(&mut self, user: &str) -> usize {
        let u = self.expect("GET", &format!("/Users/{user}"), None, 200);
        u["groups"].as_array().map_or(0, Vec::len)
    }

    /// `totalResults` of a filtered query (members excluded).
    fn count(&mut self, endpoint: &str, filter: &str) -> u64 {
        let encoded: String = filter
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let page =
            self.expect("GET", &format!("/{endpoint}?count=10&excludedAttributes=members&filter={encoded}"), None, 200);
        page["totalResults"].as_u64().unwrap()
    }

    fn create_group(&mut self, name: &str) -> String {
        let g = self.expect("POST", "/Groups", Some(&json!({"schemas": [CORE_GROUP], "displayName": name})), 201);
        g["id"].as_str().unwrap().to_owned()
    }
}

/// Runs the large-account scenario against `target` on a fresh account,
/// panicking with what differs. Tens of seconds on a real store.
pub fn large_tenant(target: &mut dyn Target, vars: &Vars) {
    let c = &mut Client { target, vars };
    let users = c.bulk_create(
        "Users",
        (0..USERS).map(|i| json!({"schemas": [CORE_USER], "userName": format!("user{i:05}@example.com"), "externalId": "batch"})).collect(),
    );
    let u0 = users[0].clone();

    // Counts and lookups past the 1,000-entry scan cap.
    let page = c.expect("GET", "/Users?startIndex=5001&count=1000", None, 200);
    assert_eq!((page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()), (Some(USERS as u64), Some(100)));
    assert_eq!(c.count("Users", r#"externalId eq "batch""#), USERS as u64);
    assert_eq!(c.count("Users", r#"userName sw "USER050""#), 100);
    assert_eq!(c.count("Users", r#"userName sw "user051""#), 0);
    assert_eq!(c.count("Users", r#"userName eq "user00001@example.com" or userName eq "USER05099@EXAMPLE.COM""#), 2);

    // u0 in more groups than one commit can take it out of.
    let groups = c.bulk_create(
        "Groups",
        (0..GROUPS)
            .map(
                |i| json!({"schemas": [CORE_GROUP], "displayName": format!("team {i:04}"), "members": [{"value": u0}]}),
            )
            .collect(),
    );
    assert_eq!(c.groups_of(&u0), GROUPS);
    assert_eq!(c.count("Groups", &format!(r#"members[value eq "{u0}"]"#)), GROUPS as u64);

    // A group of every user, filled in two requests within the budget; one
    // request over the budget is refused and changes nothing.
    let big = c.create_group("Everyone");
    let (status, refused) = c.patch_members(&big, "add", &users[..BUDGET + 1]);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["scimType"], "invalidValue");
    assert_eq!(
        refused["detail"],
        format!("one request may add or remove at most {BUDGET} members; send the change as several PATCH requests")
    );
    assert!(c.members(&big).is_empty());
    assert_eq!(c.patch_members(&big, "add", &users[..2_550]).0, 204);
    assert_eq!(c.patch_members(&big, "add", &users[2_550..]).0, 204);
    assert_eq!(c.members(&big).len(), USERS);

    // Deleting u0 answers at once; no group shows it from then on.
    c.expect("DELETE", &format!("/Users/{u0}"), None, 204);
    c.expect("GET", &format!("/Users/{u0}"), None, 404);
    assert_eq!(c.members(&big).len(), USERS - 1);
    assert!(c.members(&groups[GROUPS - 1]).is_empty());
    assert_eq!(c.count("Groups", &format!(r#"members[value eq "{u0}"]"#)), 0);

    // Okta's full re-push to one member clears 5,099 in one request.
    assert_eq!(c.patch_members(&big, "replace", &users[1..2]).0, 204);
    assert_eq!(c.members(&big), vec![users[1].clone()]);
    assert_eq!(c.groups_of(&users[2]), 0);

    // A group of 5,000 members is deleted in one request; re-created under
    // its name it has the same id and none of the old members.
    assert_eq!(c.patch_members(&big, "add", &users[1..2_501]).0, 204);
    assert_eq!(c.patch_members(&big, "add", &users[2_501..5_001]).0, 204);
    assert_eq!(c.members(&big).len(), 5_000);
    c.expect("DELETE", &format!("/Groups/{big}"), None, 204);
    c.expect("GET", &format!("/Groups/{big}"), None, 404);
    assert_eq!(c.groups_of(&users[1]), 0);
    assert_eq!(c.groups_of(&users[4_000]), 0);
    assert_eq!(c.create_group("Everyone"), big);
    assert!(c.members(&big).is_empty());
    assert_eq!(c.patch_members(&big, "add", &users[7..8]).0, 204);
    assert_eq!(c.members(&big), vec![users[7].clone()]);
    let all = c.expect("GET", "/Users?count=0", None, 200);
    assert_eq!(all["totalResults"].as_u64(), Some((USERS - 1) as u64));
}
