//! Printing perchd's JSON replies, for people or (with `--json`) as JSON.
//!
//! The text forms are for reading, not parsing: scripts use `--json`, whose shapes are
//! the bridge's (doc/bridge.rst), passed through untouched.

use serde_json::Value;

/// A typed result, printed as [`json`] prints it (through a JSON value, so its keys
/// come out sorted, as perchd's own values do).
pub fn typed<T: serde::Serialize>(v: &T) {
    json(&serde_json::to_value(v).unwrap_or(Value::Null));
}

pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub fn profiles(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    if items(list).is_empty() {
        println!(
            "no profiles (create one with `perch profile create NAME --jid JID --password-stdin`)"
        );
    }
    for p in items(list) {
        let mut flags = Vec::new();
        if p["default"] == true {
            flags.push("default");
        }
        if p["autoconnect"] == true {
            flags.push("autoconnect");
        }
        if p["insecure"] == true {
            flags.push("INSECURE");
        }
        println!("{}\t{}\t{}", s(&p["name"]), s(&p["jid"]), flags.join(","));
    }
}

pub fn profile(p: &Value, json_out: bool) {
    if json_out {
        return json(p);
    }
    let or_default = |v: &Value, d: &'static str| v.as_str().map(str::to_owned).unwrap_or(d.into());
    println!("name:        {}", s(&p["name"]));
    println!("jid:         {}", s(&p["jid"]));
    println!("server:      {}", or_default(&p["server"], "(from DNS)"));
    println!(
        "ca file:     {}",
        or_default(&p["ca_file"], "(system roots only)")
    );
    println!(
        "tls verify:  {}",
        if p["insecure"] == true {
            "OFF (insecure)"
        } else {
            "on"
        }
    );
    println!("autoconnect: {}", p["autoconnect"] == true);
    println!("default:     {}", p["default"] == true);
}

pub fn status(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    if items(list).is_empty() {
        println!("no profiles");
    }
    for e in items(list) {
        let jid = e["bound_jid"].as_str().unwrap_or(s(&e["jid"]));
        let mut line = format!("{}\t{}\t{}", s(&e["profile"]), s(&e["state"]), jid);
        if let Some(owner) = e["owner"].as_str() {
            line.push_str(&format!("\ton {owner}"));
        }
        if let Some(err) = e["error"].as_object() {
            line.push_str(&format!(
                "\t{}: {}",
                err.get("name").and_then(Value::as_str).unwrap_or(""),
                err.get("message").and_then(Value::as_str).unwrap_or("")
            ));
        }
        println!("{line}");
    }
}

pub fn history(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for m in items(list) {
        let ts = s(&m["timestamp"]);
        // 2026-11-23T08:00:00.123456Z → 2026-11-23 08:00:00
        let short = ts.get(..19).unwrap_or(ts).replace('T', " ");
        let arrow = if m["direction"] == "out" { ">" } else { "<" };
        println!("[{short}] {arrow} {}: {}", s(&m["peer"]), s(&m["body"]));
    }
}

pub fn roster(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for c in items(list) {
        let mut line = format!("{}\t{}", s(&c["jid"]), s(&c["subscription"]));
        if c["ask"] == true {
            line.push_str(" (asked)");
        }
        if let Some(name) = c["name"].as_str() {
            line.push_str(&format!("\t{name:?}"));
        }
        let groups: Vec<&str> = items(&c["groups"]).iter().map(s).collect();
        if !groups.is_empty() {
            line.push_str(&format!("\t[{}]", groups.join(", ")));
        }
        println!("{line}");
    }
}

pub fn presences(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for p in items(list) {
        let mut line = format!("{}\t{}", s(&p["jid"]), s(&p["show"]));
        if let Some(status) = p["status"].as_str() {
            line.push_str(&format!("\t{status:?}"));
        }
        if let Some(prio) = p["priority"].as_i64().filter(|p| *p != 0) {
            line.push_str(&format!("\tpriority {prio}"));
        }
        println!("{line}");
    }
}

/// One signal: a JSON line with `--json`, else a short text line.
pub fn signal(member: &str, args: &Value, json_out: bool) {
    if json_out {
        let mut obj = serde_json::Map::new();
        obj.insert("signal".into(), Value::String(member.to_owned()));
        if let Some(a) = args.as_object() {
            obj.extend(a.clone());
        }
        println!("{}", Value::Object(obj));
        return;
    }
    let text = match member {
        "ConnectionState" => {
            let mut t = format!("{} {}", s(&args["state"]), s(&args["jid"]));
            if !s(&args["reason"]).is_empty() {
                t.push_str(&format!(" ({})", s(&args["reason"])));
            }
            t
        }
        "MessageReceived" => {
            let m = &args["message"];
            let arrow = if m["direction"] == "out" { ">" } else { "<" };
            format!("{arrow} {}: {}", s(&m["peer"]), s(&m["body"]))
        }
        "PresenceUpdate" => {
            let mut t = format!("{} {}", s(&args["jid"]), s(&args["show"]));
            if !s(&args["status"]).is_empty() {
                t.push_str(&format!(" {:?}", s(&args["status"])));
            }
            t
        }
        "RosterChanged" => format!(
            "roster {} {} {:?}",
            s(&args["jid"]),
            s(&args["subscription"]),
            s(&args["name"])
        ),
        "SubscriptionRequest" => format!("{} from {}", s(&args["action"]), s(&args["jid"])),
        "PluginSignal" => format!(
            "{} {} {}",
            s(&args["plugin"]),
            s(&args["name"]),
            args["data"]
        ),
        "ProgressStarted" | "Progress" | "ProgressFinished" | "ProgressError" => {
            format!("job {} {}", s(&args["id"]), args["data"])
        }
        _ => args.to_string(),
    };
    println!("[{}] {member}: {text}", s(&args["profile"]));
}

pub fn plugins(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for p in items(list) {
        let mut line = format!(
            "{}\t{}\t{}",
            s(&p["import_name"]),
            s(&p["state"]),
            s(&p["name"])
        );
        if !s(&p["reason"]).is_empty() {
            line.push_str(&format!("\t({})", s(&p["reason"])));
        }
        println!("{line}");
    }
}

pub fn triggers(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for t in items(list) {
        println!("{}\t{}", s(&t["name"]), s(&t["doc"]));
        for h in items(&t["handlers"]) {
            println!("    {:>6}  {}", h["priority"], s(&h["plugin"]));
        }
    }
}

pub fn actions(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for a in items(list) {
        println!("{} ({}): {}", s(&a["name"]), s(&a["plugin"]), s(&a["doc"]));
        for p in items(&a["params"]) {
            let req = if p["required"] == true {
                "required"
            } else {
                "optional"
            };
            let default = if p["default"].is_null() {
                String::new()
            } else {
                format!(", default {}", p["default"])
            };
            println!(
                "    {}: {} ({req}{default}) {}",
                s(&p["name"]),
                s(&p["type"]),
                s(&p["doc"])
            );
        }
    }
}

pub fn disco(info: &Value, list: &Value, json_out: bool) {
    if json_out {
        return json(&serde_json::json!({"info": info, "items": list}));
    }
    for i in items(&info["identities"]) {
        println!(
            "identity: {}/{} {}",
            s(&i["category"]),
            s(&i["type"]),
            s(&i["name"])
        );
    }
    for f in items(&info["features"]) {
        println!("feature:  {}", s(f));
    }
    for i in items(&list["items"]) {
        let node = i["node"]
            .as_str()
            .map(|n| format!(" node={n}"))
            .unwrap_or_default();
        let name = i["name"]
            .as_str()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!("item:     {}{node}{name}", s(&i["jid"]));
    }
}

pub fn jobs(list: &Value, json_out: bool) {
    if json_out {
        return json(list);
    }
    for j in items(list) {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            s(&j["id"]),
            s(&j["state"]),
            s(&j["kind"]),
            s(&j["created"]).get(..19).unwrap_or(""),
            s(&j["description"])
        );
    }
}

pub fn job(j: &Value, log: Option<&Value>, json_out: bool) {
    if json_out {
        let mut j = j.clone();
        if let Some(l) = log {
            j["log"] = l.clone();
        }
        return json(&j);
    }
    println!(
        "job {} ({}, {}): {}",
        s(&j["id"]),
        s(&j["plugin"]),
        s(&j["kind"]),
        s(&j["description"])
    );
    let pct = j["percent"]
        .as_f64()
        .map(|p| format!(" {p:.0}%"))
        .unwrap_or_default();
    println!("state: {} — {}{pct}", s(&j["state"]), s(&j["status"]));
    if let Some(e) = j["error"].as_str() {
        println!("error: {e}");
    }
    if !j["result"].is_null() {
        println!("result: {}", j["result"]);
    }
    for r in log.map(items).unwrap_or_default() {
        println!(
            "  [{}] {}",
            s(&r["at"]).get(..19).unwrap_or(""),
            s(&r["status"])
        );
    }
}

/// One progress record while following a job: a redrawn bar on a terminal.
pub fn progress_line(data: &Value, tty: bool) {
    let status = s(&data["status"]);
    match data["percent"].as_f64() {
        Some(p) if tty => {
            let width = 30usize;
            let filled = ((p.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
            eprint!(
                "\r[{}{}] {p:>5.1}% {status:<40.40}",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
        }
        Some(p) => eprintln!("{p:.1}% {status}"),
        None => eprintln!("{status}"),
    }
}
