//! The JSON Schema file describes exactly what `render(_, Format::Json)` writes: the samples
//! validate, and reports broken in each of several ways do not.

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};
use traceless_report::{Format, JSON_SCHEMA, render, sample};

fn validator() -> Validator {
    let schema: Value = serde_json::from_str(JSON_SCHEMA).expect("the schema file is JSON");
    assert!(
        jsonschema::meta::is_valid(&schema),
        "the schema is not a valid draft 2020-12 schema"
    );
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn serialized(report: &traceless_report::Report) -> Value {
    serde_json::from_str(&render(report, Format::Json).unwrap()).unwrap()
}

#[test]
fn sample_reports_validate() {
    let validator = validator();
    for (name, report) in [
        ("passing", sample::passing()),
        ("failing", sample::failing()),
    ] {
        let value = serialized(&report);
        assert_eq!(
            errors(&validator, &value),
            Vec::<String>::new(),
            "{name} sample does not validate"
        );
    }
}

#[test]
fn broken_reports_do_not_validate() {
    let validator = validator();
    let good = serialized(&sample::failing());
    type Breakage = fn(&mut Value);
    let breakages: [(&str, Breakage); 12] = [
        ("unknown verdict", |v| v["verdict"] = json!("maybe")),
        ("other schema version", |v| {
            v["schema"] = json!("traceless.report/v2")
        }),
        ("missing top-level field", |v| {
            v.as_object_mut().unwrap().remove("errors");
        }),
        ("extra top-level field", |v| v["score"] = json!(97)),
        ("unknown clause verdict", |v| {
            v["clauses"][0]["verdict"] = json!("passed")
        }),
        ("unknown monitor state", |v| {
            v["monitors"][0]["state"] = json!("sleeping")
        }),
        ("digest not hex", |v| {
            v["provenance"]["config"]["sha256"] = json!("not-a-digest")
        }),
        ("start time not RFC 3339", |v| {
            v["provenance"]["started-at"] = json!("yesterday")
        }),
        ("negative duration", |v| {
            v["provenance"]["duration-ms"] = json!(-1)
        }),
        ("snake_case field", |v| {
            let f = v["findings"][0].as_object_mut().unwrap();
            let ev = f.remove("evidence").unwrap();
            f.insert("evidence_items".into(), ev);
        }),
        ("bad finding code", |v| {
            v["findings"][0]["code"] = json!("DISK-1")
        }),
        ("clause passed with findings", |v| {
            let pass = v["clauses"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|c| c["verdict"] == "pass")
                .unwrap();
            pass["findings"] = json!(["F1"]);
        }),
    ];
    for (what, breakage) in breakages {
        let mut broken = good.clone();
        breakage(&mut broken);
        assert_ne!(broken, good, "{what}: the breakage changed nothing");
        assert!(
            !validator.is_valid(&broken),
            "a report with {what} validated"
        );
    }
}

#[test]
fn the_json_round_trips_through_load() {
    let report = sample::failing();
    let text = render(&report, Format::Json).unwrap();
    assert_eq!(traceless_report::from_json(&text).unwrap(), report);
}
