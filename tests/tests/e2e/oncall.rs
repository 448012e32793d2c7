//! Contacts and on-call: people, teams, rotations with overrides,
//! escalation policies (validation at the boundary, unique names, refusals
//! that would leave a rotation or an escalation level empty, roles, audit),
//! who is on call now and next (expectations computed here independently
//! for a daily UTC rotation), and `level_recipients` through the library
//! for person, rotation and team targets with deduplication.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc, Weekday};
use opsdeck::oncall::{level_recipients, levels, Recipient};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{
    AuditPage, EscalationPolicy, OnCall, Outcome, Person, Role, Rotation, RotationOverride, Team,
};
use reqwest::Method;
use serde_json::{json, Value};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

/// Now, in whole seconds (what Postgres stores round-trips exactly).
fn now_s() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

async fn created<T: serde::de::DeserializeOwned>(api: &Api, path: &str, body: Value) -> T {
    let res = api.post(path, &body).await;
    assert_eq!(res.status(), 201, "POST {path} {body}");
    ok_json(res, path).await
}

async fn person(admin: &Api, name: &str) -> Person {
    created(admin, "/api/v1/people", json!({ "name": name })).await
}

async fn put(api: &Api, path: &str, body: &Value) -> reqwest::Response {
    api.send(Method::PUT, path, body).await
}

async fn audit(admin: &Api, action: &str) -> AuditPage {
    admin
        .json(&format!("/api/v1/audit?action={action}&limit=200"))
        .await
}

/// Every entry of `action` is a success by the admin; returns how many.
async fn audited(admin: &Api, action: &str) -> usize {
    let page = audit(admin, action).await;
    assert!(
        page.entries
            .iter()
            .all(|e| e.actor == "admin-user" && e.outcome == Outcome::Success),
        "{action}: {:?}",
        page.entries
    );
    page.entries.len()
}

async fn no_unaudited(admin: &Api) {
    let page = audit(admin, "request.unaudited").await;
    assert!(page.entries.is_empty(), "{:?}", page.entries);
}

#[tokio::test]
async fn people_and_teams_are_validated_admin_only_and_audited() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;

    let alice: Person = created(
        &admin,
        "/api/v1/people",
        json!({
            "name": "  Alice Admin ", "title": "DBA", "email": "alice@example.org",
            "phone": "+49 30 123-4567", "chat_handle": "@alice",
        }),
    )
    .await;
    assert_eq!(alice.name, "Alice Admin");
    assert_eq!(alice.title, "DBA");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.phone.as_deref(), Some("+49 30 123-4567"));
    assert_eq!(alice.chat_handle.as_deref(), Some("@alice"));
    assert!(alice.teams.is_empty() && alice.user_id.is_none());
    // Blank contact details are none.
    let bob: Person = created(
        &admin,
        "/api/v1/people",
        json!({"name": "Bob", "email": "", "phone": "  "}),
    )
    .await;
    assert!(bob.email.is_none() && bob.phone.is_none());

    // Validation at the boundary, naming the field.
    for (body, field) in [
        (json!({"name": ""}), "name:"),
        (json!({"name": "   "}), "name:"),
        (json!({"name": "x".repeat(101)}), "name:"),
        (json!({"name": "C", "email": "not-an-address"}), "email:"),
        (json!({"name": "C", "email": "a@b"}), "email:"),
        (json!({"name": "C", "email": "a b@example.org"}), "email:"),
        (json!({"name": "C", "phone": "030 1234567"}), "phone:"),
        (json!({"name": "C", "phone": "+49 (30) 1234567"}), "phone:"),
        (json!({"name": "C", "phone": "+1"}), "phone:"),
        (json!({"name": "C", "user_id": 987_654}), "user_id:"),
        (
            json!({"name": "C", "chat_handle": "two words"}),
            "chat_handle:",
        ),
    ] {
        let msg = expect_error(admin.post("/api/v1/people", &body).await, 400).await;
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    // Unique names.
    let msg = expect_error(
        admin
            .post("/api/v1/people", &json!({"name": "Alice Admin"}))
            .await,
        409,
    )
    .await;
    assert!(msg.contains("name"), "{msg}");
    let msg = expect_error(
        put(
            &admin,
            &format!("/api/v1/people/{}", bob.id),
            &json!({"name": "Alice Admin"}),
        )
        .await,
        409,
    )
    .await;
    assert!(msg.contains("name"), "{msg}");

    // Update; a person may be an Opsdeck user (once).
    let admin_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'admin-user'")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let bob: Person = ok_json(
        put(
            &admin,
            &format!("/api/v1/people/{}", bob.id),
            &json!({"name": "Bob Builder", "title": "DevOps lead", "phone": "+1 212 555 0100", "user_id": admin_id}),
        )
        .await,
        "update person",
    )
    .await;
    assert_eq!(bob.name, "Bob Builder");
    assert_eq!(bob.user_id, Some(admin_id));
    let msg = expect_error(
        put(
            &admin,
            &format!("/api/v1/people/{}", alice.id),
            &json!({"name": "Alice Admin", "user_id": admin_id}),
        )
        .await,
        409,
    )
    .await;
    assert!(msg.contains("user_id"), "{msg}");
    expect_error(
        put(&admin, "/api/v1/people/987654", &json!({"name": "Nobody"})).await,
        404,
    )
    .await;

    // Teams: members exist, once each; unique names.
    let dba: Team = created(
        &admin,
        "/api/v1/teams",
        json!({"name": "DBA", "description": "Databases", "members": [bob.id, alice.id]}),
    )
    .await;
    // Members by name.
    let names: Vec<&str> = dba.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Alice Admin", "Bob Builder"]);
    for (body, field) in [
        (
            json!({"name": "Ops", "members": [987_654]}),
            "members: no person with id 987654",
        ),
        (
            json!({"name": "Ops", "members": [alice.id, alice.id]}),
            "members:",
        ),
        (json!({"name": ""}), "name:"),
    ] {
        let msg = expect_error(admin.post("/api/v1/teams", &body).await, 400).await;
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let msg = expect_error(
        admin.post("/api/v1/teams", &json!({"name": "DBA"})).await,
        409,
    )
    .await;
    assert!(msg.contains("team with this name"), "{msg}");
    let one: Person = viewer.json(&format!("/api/v1/people/{}", alice.id)).await;
    assert_eq!(one.teams, vec!["DBA".to_owned()]);
    let dba: Team = ok_json(
        put(
            &admin,
            &format!("/api/v1/teams/{}", dba.id),
            &json!({"name": "DBA", "description": "Databases", "members": [alice.id]}),
        )
        .await,
        "update team",
    )
    .await;
    assert_eq!(dba.members.len(), 1);

    // Everyone reads; only admins write.
    let people: Vec<Person> = viewer.json("/api/v1/people").await;
    assert_eq!(people.len(), 2);
    let teams: Vec<Team> = viewer.json("/api/v1/teams").await;
    assert_eq!(teams.len(), 1);
    let _: Team = viewer.json(&format!("/api/v1/teams/{}", dba.id)).await;
    for api in [&viewer, &operator] {
        expect_error(
            api.post("/api/v1/people", &json!({"name": "Eve"})).await,
            403,
        )
        .await;
        expect_error(
            put(
                api,
                &format!("/api/v1/people/{}", alice.id),
                &json!({"name": "Eve"}),
            )
            .await,
            403,
        )
        .await;
        expect_error(
            api.delete(&format!("/api/v1/people/{}", alice.id)).await,
            403,
        )
        .await;
        expect_error(
            api.post("/api/v1/teams", &json!({"name": "Eve"})).await,
            403,
        )
        .await;
        expect_error(
            put(
                api,
                &format!("/api/v1/teams/{}", dba.id),
                &json!({"name": "Eve"}),
            )
            .await,
            403,
        )
        .await;
        expect_error(api.delete(&format!("/api/v1/teams/{}", dba.id)).await, 403).await;
    }
    expect_error(admin.get("/api/v1/people/987654").await, 404).await;
    expect_error(admin.get("/api/v1/teams/987654").await, 404).await;

    // Delete (nothing relies on them).
    assert_eq!(
        admin
            .delete(&format!("/api/v1/teams/{}", dba.id))
            .await
            .status(),
        204
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/people/{}", bob.id))
            .await
            .status(),
        204
    );
    expect_error(
        admin.delete(&format!("/api/v1/people/{}", bob.id)).await,
        404,
    )
    .await;

    // Audited, without contact details.
    for (action, n) in [
        ("person.create", 2),
        ("person.update", 1),
        ("person.delete", 1),
        ("team.create", 1),
        ("team.update", 1),
        ("team.delete", 1),
    ] {
        assert_eq!(audited(&admin, action).await, n, "{action}");
    }
    let page = audit(&admin, "person.").await;
    let text = serde_json::to_string(&page.entries).unwrap();
    for secret in ["alice@example.org", "123-4567", "555 0100", "@alice"] {
        assert!(!text.contains(secret), "{secret} in the audit log: {text}");
    }
    let created_alice = audit(&admin, "person.create").await;
    assert!(created_alice
        .entries
        .iter()
        .any(|e| e.params["name"] == "Alice Admin"
            && e.params["contact_fields"] == json!(["email", "phone", "chat_handle"])));
    let denied = audit(&admin, "request.denied").await;
    assert!(denied.entries.len() >= 12, "{}", denied.entries.len());
    no_unaudited(&admin).await;
    s.stop().await;
}

/// Who a daily UTC rotation handing off at `hh:mm` (not 00:00) from
/// `starts_on` puts on call at `t`: (member index, from, until). Written
/// from the rules, independently of the server's code.
fn daily_utc(
    starts_on: NaiveDate,
    hh: u32,
    mm: u32,
    n: usize,
    t: DateTime<Utc>,
) -> (usize, DateTime<Utc>, DateTime<Utc>) {
    let start = starts_on.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let first = starts_on.and_hms_opt(hh, mm, 0).unwrap().and_utc();
    let count = if t < first {
        0
    } else {
        (t - first).num_seconds() / 86_400 + 1
    };
    let from = if count == 0 {
        start
    } else {
        first + TimeDelta::days(count - 1)
    };
    ((count as usize) % n, from, first + TimeDelta::days(count))
}

fn rotation_body(name: &str, starts_on: NaiveDate, members: &[i64]) -> Value {
    json!({
        "name": name, "handoff": "daily", "handoff_time": "09:30", "time_zone": "UTC",
        "starts_on": starts_on, "members": members,
    })
}

async fn oncall_of(api: &Api, rotation: &str) -> OnCall {
    let all: Vec<OnCall> = api.json("/api/v1/oncall").await;
    all.into_iter()
        .find(|o| o.rotation == rotation)
        .unwrap_or_else(|| panic!("no on-call entry for {rotation}"))
}

#[tokio::test]
async fn rotations_overrides_and_who_is_on_call() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let a: Person = created(
        &admin,
        "/api/v1/people",
        json!({"name": "Ann", "phone": "+44 20 7946 0000", "email": "ann@example.org"}),
    )
    .await;
    let b = person(&admin, "Ben").await;
    let c = person(&admin, "Cid").await;
    let d = person(&admin, "Dee").await;
    let ids = [a.id, b.id, c.id];
    let names = ["Ann", "Ben", "Cid"];

    // Nothing yet: an empty list.
    let none: Vec<OnCall> = viewer.json("/api/v1/oncall").await;
    assert!(none.is_empty());

    let starts_on = Utc::now().date_naive() - TimeDelta::days(3);
    let good = rotation_body("Primary", starts_on, &ids);
    let primary: Rotation = created(&admin, "/api/v1/rotations", good.clone()).await;
    assert_eq!(primary.handoff, "daily");
    assert_eq!(primary.handoff_time, "09:30");
    assert_eq!(primary.handoff_weekday, None);
    assert_eq!(primary.starts_on, starts_on);
    let order: Vec<&str> = primary.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(order, names);

    // Validation at the boundary.
    let with = |patch: Value| {
        let mut body = good.clone();
        body["name"] = json!("Other");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (patch, field) in [
        (json!({"time_zone": "Mars/Olympus_Mons"}), "time_zone:"),
        (json!({"time_zone": ""}), "time_zone:"),
        (json!({"handoff_time": "9am"}), "handoff_time:"),
        (json!({"handoff_time": "24:00"}), "handoff_time:"),
        (json!({"handoff_time": "9:30"}), "handoff_time:"),
        (json!({"handoff": "weekly"}), "handoff_weekday:"),
        (
            json!({"handoff": "daily", "handoff_weekday": 1}),
            "handoff_weekday:",
        ),
        (
            json!({"handoff": "weekly", "handoff_weekday": 8}),
            "handoff_weekday:",
        ),
        (json!({"handoff": "hourly"}), "handoff:"),
        (
            json!({"members": [a.id, 987_654]}),
            "members: no person with id 987654",
        ),
        (json!({"members": []}), "members:"),
        (json!({"members": [a.id, b.id, a.id]}), "members:"),
        (json!({"team_id": 987_654}), "team_id:"),
        (json!({"name": ""}), "name:"),
        (json!({"starts_on": "1900-01-01"}), "starts_on:"),
    ] {
        let body = with(patch.clone());
        let msg = expect_error(admin.post("/api/v1/rotations", &body).await, 400).await;
        assert!(msg.starts_with(field), "{patch}: {msg}");
    }
    let msg = expect_error(admin.post("/api/v1/rotations", &good).await, 409).await;
    assert!(msg.contains("rotation with this name"), "{msg}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM rotations")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "nothing of the refused writes was stored");

    // Now and next, as computed here from the rules.
    let check = |o: &OnCall, t: DateTime<Utc>| -> Result<(), String> {
        let (i, from, until) = daily_utc(starts_on, 9, 30, 3, t);
        let (j, _, next_until) = daily_utc(starts_on, 9, 30, 3, until);
        let cur = o.current.as_ref().ok_or("nobody on call")?;
        let next = o.next.as_ref().ok_or("nobody next")?;
        let want = (ids[i], from, until, false, ids[j], until, next_until, false);
        let got = (
            cur.person.id,
            cur.from,
            cur.until,
            cur.is_override,
            next.person.id,
            next.from,
            next.until,
            next.is_override,
        );
        if got == want {
            Ok(())
        } else {
            Err(format!("at {t}: want {want:?}, got {got:?}"))
        }
    };
    let t0 = Utc::now();
    let o = oncall_of(&viewer, "Primary").await;
    let t1 = Utc::now();
    // (A handoff between the two instants makes either answer right.)
    check(&o, t0).or_else(|_| check(&o, t1)).unwrap();
    assert_eq!(o.rotation_id, primary.id);
    // Contact details come along for the page.
    let (i, _, _) = daily_utc(starts_on, 9, 30, 3, t0);
    if i == 0 {
        let cur = o.current.as_ref().unwrap();
        assert_eq!(cur.phone.as_deref(), Some("+44 20 7946 0000"));
        assert_eq!(cur.email.as_deref(), Some("ann@example.org"));
    }

    // A weekly rotation in Berlin hands off Mondays at 09:00 local
    // (07:00 or 08:00 UTC), starting in the future: nobody yet, next is
    // the first member from the start.
    let later = Utc::now().date_naive() + TimeDelta::days(10);
    let weekly: Rotation = created(
        &admin,
        "/api/v1/rotations",
        json!({
            "name": "Secondary", "handoff": "weekly", "handoff_weekday": 1, "handoff_time": "09:00",
            "time_zone": "Europe/Berlin", "starts_on": later, "members": [d.id, c.id],
        }),
    )
    .await;
    assert_eq!(weekly.handoff_weekday, Some(1));
    let o = oncall_of(&viewer, "Secondary").await;
    assert!(o.current.is_none(), "{o:?}");
    let next = o.next.expect("the first shift");
    assert_eq!(next.person.id, d.id);
    // From the start day's midnight in Berlin (22:00 or 23:00 UTC before).
    assert_eq!(next.from.date_naive(), later - TimeDelta::days(1));
    assert!(matches!(next.from.hour(), 22 | 23), "{}", next.from);
    assert_eq!(next.until.weekday(), Weekday::Mon, "{}", next.until);
    assert!(
        matches!(next.until.hour(), 7 | 8) && next.until.minute() == 0,
        "{}",
        next.until
    );

    // An override covering now changes who is on call, until it ends; the
    // rotation's member at that time is next.
    let now = now_s();
    let (starts, ends) = (now - TimeDelta::hours(1), now + TimeDelta::hours(2));
    let ov: RotationOverride = created(
        &admin,
        &format!("/api/v1/rotations/{}/overrides", primary.id),
        json!({"person_id": d.id, "starts_at": starts, "ends_at": ends, "reason": "Ann's holiday"}),
    )
    .await;
    assert_eq!(ov.person.name, "Dee");
    assert_eq!(ov.created_by, "admin-user");
    let o = oncall_of(&viewer, "Primary").await;
    let cur = o.current.as_ref().unwrap();
    assert_eq!(
        (cur.person.id, cur.from, cur.until, cur.is_override),
        (d.id, starts, ends, true)
    );
    let (j, _, next_until) = daily_utc(starts_on, 9, 30, 3, ends);
    let next = o.next.as_ref().unwrap();
    assert_eq!(
        (next.person.id, next.from, next.until, next.is_override),
        (ids[j], ends, next_until, false)
    );
    let got: Rotation = viewer
        .json(&format!("/api/v1/rotations/{}", primary.id))
        .await;
    assert_eq!(got.overrides.len(), 1);
    assert_eq!(got.overrides[0].reason, "Ann's holiday");

    // A later-created override inside it wins while it lasts.
    let inner: RotationOverride = created(
        &admin,
        &format!("/api/v1/rotations/{}/overrides", primary.id),
        json!({"person_id": c.id, "starts_at": now - TimeDelta::minutes(10), "ends_at": now + TimeDelta::minutes(50)}),
    )
    .await;
    let o = oncall_of(&viewer, "Primary").await;
    let cur = o.current.as_ref().unwrap();
    assert_eq!(
        (cur.person.id, cur.until),
        (c.id, now + TimeDelta::minutes(50))
    );
    let next = o.next.as_ref().unwrap();
    assert_eq!(
        (next.person.id, next.until, next.is_override),
        (d.id, ends, true)
    );

    // Override validation.
    let path = format!("/api/v1/rotations/{}/overrides", primary.id);
    for (body, field) in [
        (
            json!({"person_id": 987_654, "starts_at": now, "ends_at": ends}),
            "person_id:",
        ),
        (
            json!({"person_id": d.id, "starts_at": ends, "ends_at": now}),
            "ends_at:",
        ),
        (
            json!({"person_id": d.id, "starts_at": now, "ends_at": now}),
            "ends_at:",
        ),
        (
            json!({"person_id": d.id, "starts_at": now, "ends_at": now + TimeDelta::days(400)}),
            "ends_at:",
        ),
        (
            json!({"person_id": d.id, "starts_at": now - TimeDelta::days(3), "ends_at": now - TimeDelta::days(2)}),
            "ends_at:",
        ),
    ] {
        let msg = expect_error(admin.post(&path, &body).await, 400).await;
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    expect_error(
        admin
            .post(
                "/api/v1/rotations/987654/overrides",
                &json!({"person_id": d.id, "starts_at": now, "ends_at": ends}),
            )
            .await,
        404,
    )
    .await;

    // Removing the overrides puts the rotation back.
    for id in [inner.id, ov.id] {
        let res = admin
            .delete(&format!("/api/v1/rotations/{}/overrides/{id}", primary.id))
            .await;
        assert_eq!(res.status(), 204);
    }
    expect_error(
        admin
            .delete(&format!(
                "/api/v1/rotations/{}/overrides/{}",
                primary.id, ov.id
            ))
            .await,
        404,
    )
    .await;
    let t0 = Utc::now();
    let o = oncall_of(&viewer, "Primary").await;
    let t1 = Utc::now();
    check(&o, t0).or_else(|_| check(&o, t1)).unwrap();

    // Update: another turn order, another zone spelled canonically.
    let mut body = good.clone();
    body["members"] = json!([c.id, b.id, a.id]);
    body["handoff"] = json!("weekly");
    body["handoff_weekday"] = json!(3);
    body["time_zone"] = json!("America/New_York");
    let upd: Rotation = ok_json(
        put(&admin, &format!("/api/v1/rotations/{}", primary.id), &body).await,
        "update rotation",
    )
    .await;
    let order: Vec<&str> = upd.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(order, ["Cid", "Ben", "Ann"]);
    assert_eq!(
        (upd.handoff.as_str(), upd.handoff_weekday),
        ("weekly", Some(3))
    );
    assert_eq!(upd.time_zone, "America/New_York");
    let msg = expect_error(
        put(
            &admin,
            &format!("/api/v1/rotations/{}", weekly.id),
            &rotation_body("Primary", starts_on, &ids),
        )
        .await,
        409,
    )
    .await;
    assert!(msg.contains("name"), "{msg}");
    expect_error(put(&admin, "/api/v1/rotations/987654", &good).await, 404).await;

    // The only member of a rotation cannot be deleted (it would stay
    // without anyone on call); a member with others can.
    let lonely: Rotation = created(
        &admin,
        "/api/v1/rotations",
        rotation_body("Lonely", starts_on, &[d.id]),
    )
    .await;
    let msg = expect_error(admin.delete(&format!("/api/v1/people/{}", d.id)).await, 409).await;
    assert!(
        msg.contains("Dee") && msg.contains("rotation \"Lonely\" would have no members"),
        "{msg}"
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/rotations/{}", lonely.id))
            .await
            .status(),
        204
    );
    // Secondary still has Cid.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/people/{}", d.id))
            .await
            .status(),
        204
    );
    let sec: Rotation = viewer
        .json(&format!("/api/v1/rotations/{}", weekly.id))
        .await;
    assert_eq!(sec.members.len(), 1);

    // Viewers read; operators and viewers cannot write.
    let list: Vec<Rotation> = viewer.json("/api/v1/rotations").await;
    assert_eq!(list.len(), 2);
    for api in [&viewer, &operator] {
        expect_error(api.post("/api/v1/rotations", &with(json!({}))).await, 403).await;
        expect_error(
            put(api, &format!("/api/v1/rotations/{}", primary.id), &good).await,
            403,
        )
        .await;
        expect_error(
            api.delete(&format!("/api/v1/rotations/{}", primary.id))
                .await,
            403,
        )
        .await;
        expect_error(
            api.post(
                &path,
                &json!({"person_id": a.id, "starts_at": now, "ends_at": ends}),
            )
            .await,
            403,
        )
        .await;
        expect_error(
            api.delete(&format!("/api/v1/rotations/{}/overrides/1", primary.id))
                .await,
            403,
        )
        .await;
    }

    for (action, n) in [
        ("rotation.create", 3),
        ("rotation.update", 1),
        ("rotation.delete", 1),
        ("rotation.override.create", 2),
        ("rotation.override.delete", 2),
    ] {
        assert_eq!(audited(&admin, action).await, n, "{action}");
    }
    let page = audit(&admin, "rotation.override.create").await;
    assert!(page.entries.iter().any(|e| e.params["person"] == "Dee"
        && e.params["rotation"] == "Primary"
        && e.params["reason"] == "Ann's holiday"));
    no_unaudited(&admin).await;
    s.stop().await;
}

fn target(kind: &str, id: i64) -> Value {
    json!({"kind": kind, "id": id})
}

fn who(r: &[Recipient]) -> Vec<(String, String)> {
    r.iter().map(|x| (x.name.clone(), x.via.clone())).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn escalation_policies_and_level_recipients() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let ann: Person = created(
        &admin,
        "/api/v1/people",
        json!({"name": "Ann", "email": "ann@example.org", "phone": "+49 30 1111111", "chat_handle": "@ann"}),
    )
    .await;
    let ben = person(&admin, "Ben").await;
    let cid = person(&admin, "Cid").await;
    let dee = person(&admin, "Dee").await;
    let mgr = person(&admin, "Max Manager").await;
    let dba: Team = created(
        &admin,
        "/api/v1/teams",
        json!({"name": "DBA", "members": [dee.id, cid.id]}),
    )
    .await;
    let empty: Team = created(&admin, "/api/v1/teams", json!({"name": "Nobody yet"})).await;
    // Daily 09:00 UTC from 2026-01-01: Ann, then Ben from 09:00, Ann the next day …
    let primary: Rotation = created(
        &admin,
        "/api/v1/rotations",
        json!({
            "name": "Primary", "handoff": "daily", "handoff_time": "09:00", "time_zone": "UTC",
            "starts_on": "2026-01-01", "members": [ann.id, ben.id],
        }),
    )
    .await;

    // The handbook's default: primary on call at once, secondary after 15
    // minutes, the manager after 30.
    let handbook = json!({
        "name": "Handbook", "description": "primary, secondary, manager", "is_default": true,
        "levels": [
            {"delay_secs": 0, "targets": [target("rotation", primary.id)]},
            {"delay_secs": 900, "targets": [target("person", ben.id), target("team", dba.id)]},
            {"delay_secs": 1800, "targets": [target("person", ann.id), target("rotation", primary.id),
                                             target("team", dba.id), target("person", mgr.id)]},
        ],
    });
    let p: EscalationPolicy =
        created(&admin, "/api/v1/escalation-policies", handbook.clone()).await;
    assert!(p.is_default);
    assert_eq!(p.levels.len(), 3);
    assert_eq!(
        p.levels.iter().map(|l| l.delay_secs).collect::<Vec<_>>(),
        [0, 900, 1800]
    );
    let l1: Vec<(String, i64, Option<String>)> = p.levels[1]
        .targets
        .iter()
        .map(|t| (t.kind.clone(), t.id, t.name.clone()))
        .collect();
    assert_eq!(
        l1,
        [
            ("person".to_owned(), ben.id, Some("Ben".to_owned())),
            ("team".to_owned(), dba.id, Some("DBA".to_owned()))
        ]
    );

    // Validation of the whole policy.
    let with_levels = |levels: Value| json!({"name": "Other", "levels": levels});
    for (body, field) in [
        (with_levels(json!([])), "levels:"),
        (
            with_levels(json!([{"delay_secs": -1, "targets": [target("person", ann.id)]}])),
            "levels[0].delay_secs:",
        ),
        (
            with_levels(json!([
                {"delay_secs": 600, "targets": [target("person", ann.id)]},
                {"delay_secs": 300, "targets": [target("person", ben.id)]},
            ])),
            "levels[1].delay_secs:",
        ),
        (
            with_levels(json!([{"delay_secs": 0, "targets": []}])),
            "levels[0].targets:",
        ),
        (
            with_levels(json!([
                {"delay_secs": 0, "targets": [target("person", ann.id)]},
                {"delay_secs": 60, "targets": [target("person", ben.id), target("rotation", 987_654)]},
            ])),
            "levels[1].targets[1]: no rotation with id 987654",
        ),
        (
            with_levels(json!([{"delay_secs": 0, "targets": [target("team", 987_654)]}])),
            "levels[0].targets[0]: no team with id 987654",
        ),
        (
            with_levels(json!([{"delay_secs": 0, "targets": [target("person", 987_654)]}])),
            "levels[0].targets[0]: no person with id 987654",
        ),
        (
            with_levels(json!([{"delay_secs": 0, "targets": [target("group", ann.id)]}])),
            "levels[0].targets[0].kind:",
        ),
        (
            with_levels(
                json!([{"delay_secs": 0, "targets": [target("person", ann.id), target("person", ann.id)]}]),
            ),
            "levels[0].targets[1]:",
        ),
        (
            with_levels(json!([{"delay_secs": 0, "targets": [target("team", empty.id)]}])),
            "levels[0].targets: reach nobody",
        ),
        (
            with_levels(Value::Array(
                (0..11)
                    .map(|i| json!({"delay_secs": i * 60, "targets": [target("person", ann.id)]}))
                    .collect(),
            )),
            "levels:",
        ),
        (
            json!({"name": "", "levels": [{"delay_secs": 0, "targets": [target("person", ann.id)]}]}),
            "name:",
        ),
    ] {
        let msg = expect_error(admin.post("/api/v1/escalation-policies", &body).await, 400).await;
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let msg = expect_error(
        admin.post("/api/v1/escalation-policies", &handbook).await,
        409,
    )
    .await;
    assert!(msg.contains("escalation policy with this name"), "{msg}");
    // Ten levels are fine; equal delays are fine.
    let ten = json!({"name": "Ten", "levels": (0..10)
        .map(|i| json!({"delay_secs": (i / 2) * 60, "targets": [target("person", mgr.id)]}))
        .collect::<Vec<_>>()});
    let ten: EscalationPolicy = created(&admin, "/api/v1/escalation-policies", ten).await;
    assert!(!ten.is_default);

    // One default: a new default unsets the previous one.
    let solo: EscalationPolicy = created(
        &admin,
        "/api/v1/escalation-policies",
        json!({"name": "Solo", "is_default": true,
               "levels": [{"delay_secs": 0, "targets": [target("person", cid.id)]}]}),
    )
    .await;
    assert!(solo.is_default);
    let all: Vec<EscalationPolicy> = viewer.json("/api/v1/escalation-policies").await;
    let defaults: Vec<&str> = all
        .iter()
        .filter(|p| p.is_default)
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(defaults, ["Solo"]);
    // PUT replaces the levels as a whole and takes the default back.
    let mut body = handbook.clone();
    body["levels"] = json!([
        {"delay_secs": 0, "targets": [target("rotation", primary.id)]},
        {"delay_secs": 900, "targets": [target("person", ben.id), target("team", dba.id)]},
        {"delay_secs": 1800, "targets": [target("person", ann.id), target("rotation", primary.id),
                                         target("team", dba.id), target("person", mgr.id)]},
        {"delay_secs": 3600, "targets": [target("person", mgr.id)]},
    ]);
    let p: EscalationPolicy = ok_json(
        put(
            &admin,
            &format!("/api/v1/escalation-policies/{}", p.id),
            &body,
        )
        .await,
        "update policy",
    )
    .await;
    assert_eq!(p.levels.len(), 4);
    assert!(p.is_default);
    let solo_now: EscalationPolicy = viewer
        .json(&format!("/api/v1/escalation-policies/{}", solo.id))
        .await;
    assert!(!solo_now.is_default);
    // A refused PUT changes nothing (levels untouched).
    expect_error(
        put(
            &admin,
            &format!("/api/v1/escalation-policies/{}", p.id),
            &with_levels(json!([{"delay_secs": 0, "targets": [target("rotation", 987_654)]}])),
        )
        .await,
        400,
    )
    .await;
    let same: EscalationPolicy = viewer
        .json(&format!("/api/v1/escalation-policies/{}", p.id))
        .await;
    assert_eq!(same, p);
    expect_error(
        put(&admin, "/api/v1/escalation-policies/987654", &handbook).await,
        404,
    )
    .await;

    // The library: levels and who each level reaches at a given instant.
    let mut conn = s.pool.acquire().await.unwrap();
    assert_eq!(
        levels(&mut conn, p.id).await.unwrap(),
        [(0, 0), (1, 900), (2, 1800), (3, 3600)]
    );
    assert!(levels(&mut conn, 987_654).await.unwrap().is_empty());
    // 2026-01-01 12:00 UTC: one handoff (09:00) → Ben.
    let t_ben = at("2026-01-01T12:00:00Z");
    // 2026-01-02 12:00 UTC: two handoffs → Ann.
    let t_ann = at("2026-01-02T12:00:00Z");
    let l0 = level_recipients(&mut conn, p.id, 0, t_ben)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who(&l0), pairs(&[("Ben", "rotation Primary")]));
    let l0 = level_recipients(&mut conn, p.id, 0, t_ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who(&l0), pairs(&[("Ann", "rotation Primary")]));
    assert_eq!(l0[0].email.as_deref(), Some("ann@example.org"));
    assert_eq!(l0[0].phone.as_deref(), Some("+49 30 1111111"));
    assert_eq!(l0[0].chat_handle.as_deref(), Some("@ann"));
    assert_eq!(l0[0].person_id, ann.id);
    // A person, then a team (members by name).
    let l1 = level_recipients(&mut conn, p.id, 1, t_ben)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        who(&l1),
        pairs(&[("Ben", "person"), ("Cid", "team DBA"), ("Dee", "team DBA")])
    );
    // Deduplicated by person, first target wins: at t_ann the rotation
    // reaches Ann, already listed as a person.
    let l2 = level_recipients(&mut conn, p.id, 2, t_ann)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        who(&l2),
        pairs(&[
            ("Ann", "person"),
            ("Cid", "team DBA"),
            ("Dee", "team DBA"),
            ("Max Manager", "person")
        ])
    );
    let l2 = level_recipients(&mut conn, p.id, 2, t_ben)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        who(&l2),
        pairs(&[
            ("Ann", "person"),
            ("Ben", "rotation Primary"),
            ("Cid", "team DBA"),
            ("Dee", "team DBA"),
            ("Max Manager", "person")
        ])
    );
    // No such level; no such policy.
    assert!(level_recipients(&mut conn, p.id, 4, t_ben)
        .await
        .unwrap()
        .is_none());
    assert!(level_recipients(&mut conn, 987_654, 0, t_ben)
        .await
        .unwrap()
        .is_none());
    // An override at that instant reaches the one covering.
    sqlx::query(
        "INSERT INTO rotation_overrides (rotation_id, person_id, starts_at, ends_at, reason, created_by)
         VALUES ($1, $2, $3, $4, 'swap', 'test')",
    )
    .bind(primary.id)
    .bind(mgr.id)
    .bind(at("2026-01-01T10:00:00Z"))
    .bind(at("2026-01-01T20:00:00Z"))
    .execute(&mut *conn)
    .await
    .unwrap();
    let l0 = level_recipients(&mut conn, p.id, 0, t_ben)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who(&l0), pairs(&[("Max Manager", "rotation Primary")]));
    drop(conn);

    // Deleting what a level relies on alone is refused, naming it.
    let msg = expect_error(
        admin.delete(&format!("/api/v1/people/{}", cid.id)).await,
        409,
    )
    .await;
    assert!(
        msg.contains("Cid") && msg.contains("L1 of escalation policy \"Solo\" would reach nobody"),
        "{msg}"
    );
    // Emptying or deleting a team a level relies on alone: refused too.
    let only_team: EscalationPolicy = created(
        &admin,
        "/api/v1/escalation-policies",
        json!({"name": "Databases", "levels": [
            {"delay_secs": 0, "targets": [target("team", dba.id)]}]}),
    )
    .await;
    let msg = expect_error(
        put(
            &admin,
            &format!("/api/v1/teams/{}", dba.id),
            &json!({"name": "DBA", "members": []}),
        )
        .await,
        409,
    )
    .await;
    assert!(msg.contains("\"Databases\""), "{msg}");
    let msg = expect_error(
        admin.delete(&format!("/api/v1/teams/{}", dba.id)).await,
        409,
    )
    .await;
    assert!(
        msg.contains("DBA") && msg.contains("\"Databases\""),
        "{msg}"
    );
    // A rotation that is a level's only target.
    let msg = expect_error(
        admin
            .delete(&format!("/api/v1/rotations/{}", primary.id))
            .await,
        409,
    )
    .await;
    assert!(
        msg.contains("Primary") && msg.contains("\"Handbook\""),
        "{msg}"
    );
    // Dee is in DBA with Cid: deleting her leaves the team reaching Cid.
    assert_eq!(
        admin
            .delete(&format!("/api/v1/people/{}", dee.id))
            .await
            .status(),
        204
    );
    // Nothing half-deleted by the refusals.
    let dba_now: Team = viewer.json(&format!("/api/v1/teams/{}", dba.id)).await;
    assert_eq!(dba_now.members.len(), 1);
    let _: Person = viewer.json(&format!("/api/v1/people/{}", cid.id)).await;

    // A policy open incidents escalate with stays.
    let incident: i64 = sqlx::query_scalar(
        "INSERT INTO incidents (title, severity, escalation_policy_id, created_by)
         VALUES ('db down', 1, $1, 'test') RETURNING id",
    )
    .bind(only_team.id)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let msg = expect_error(
        admin
            .delete(&format!("/api/v1/escalation-policies/{}", only_team.id))
            .await,
        409,
    )
    .await;
    assert!(msg.contains("open incident"), "{msg}");
    sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = now() WHERE id = $1")
        .bind(incident)
        .execute(&s.pool)
        .await
        .unwrap();
    assert_eq!(
        admin
            .delete(&format!("/api/v1/escalation-policies/{}", only_team.id))
            .await
            .status(),
        204
    );
    expect_error(
        admin
            .get(&format!("/api/v1/escalation-policies/{}", only_team.id))
            .await,
        404,
    )
    .await;

    // Viewers read; only admins write.
    for api in [&viewer, &operator] {
        expect_error(
            api.post("/api/v1/escalation-policies", &handbook).await,
            403,
        )
        .await;
        expect_error(
            put(
                api,
                &format!("/api/v1/escalation-policies/{}", p.id),
                &handbook,
            )
            .await,
            403,
        )
        .await;
        expect_error(
            api.delete(&format!("/api/v1/escalation-policies/{}", p.id))
                .await,
            403,
        )
        .await;
        let _: Vec<EscalationPolicy> = api.json("/api/v1/escalation-policies").await;
        let _: Vec<OnCall> = api.json("/api/v1/oncall").await;
    }

    for (action, n) in [
        ("escalation_policy.create", 4),
        ("escalation_policy.update", 1),
        ("escalation_policy.delete", 1),
    ] {
        assert_eq!(audited(&admin, action).await, n, "{action}");
    }
    let page = audit(&admin, "escalation_policy.update").await;
    let e = &page.entries[0];
    assert_eq!(e.params["name"], "Handbook");
    assert_eq!(e.params["is_default"], true);
    assert_eq!(e.params["levels"][1]["delay_secs"], 900);
    assert_eq!(
        e.params["levels"][1]["targets"],
        json!(["person Ben", "team DBA"])
    );
    no_unaudited(&admin).await;
    s.stop().await;
}
