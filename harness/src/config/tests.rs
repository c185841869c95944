//! Config validation: each bad input is rejected with the file, line and key to fix.

use std::path::Path;

use super::*;

fn dir_with_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("fixtures/policy")).unwrap();
    std::fs::write(
        dir.path().join("fixtures/policy/privacy-policy.txt"),
        "policy",
    )
    .unwrap();
    std::fs::write(dir.path().join("fixtures/policy/clauses.toml"), "").unwrap();
    dir
}

/// Parses `source` as `<dir>/traceless.toml`; returns the error as displayed, minus the folder.
fn check_err(source: &str, expect: &str) {
    let dir = dir_with_policy();
    let path = dir.path().join("traceless.toml");
    let err = parse(&path, source).expect_err("config should be rejected");
    let shown = err
        .to_string()
        .replace(&dir.path().display().to_string(), "<dir>");
    assert_eq!(shown, expect);
}

const MINIMAL: &str = "[pipeline]\ncommand = [\"./backend\"]\n";

#[test]
fn minimal_config_gets_the_spec_defaults() {
    let dir = dir_with_policy();
    let cfg = parse(&dir.path().join("traceless.toml"), MINIMAL).unwrap();
    assert_eq!(cfg.policy.allowed_providers, ["openai", "gemini"]);
    assert_eq!(cfg.policy.memory_grace, Duration::from_millis(500));
    assert_eq!(
        cfg.pipeline.health,
        Health::Http {
            path: "/healthz".into(),
            statuses: vec![200]
        }
    );
    assert_eq!(cfg.pipeline.job, None);
    assert_eq!(cfg.pipeline.request.route, "/v1/generations");
    assert_eq!(
        cfg.pipeline.request.age_field.as_deref(),
        Some("age_confirmed")
    );
    assert_eq!(cfg.pipeline.response, ResponseMapping::Body);
    assert_eq!(cfg.audit.cases, 256);
    // Not named: the built-in fixtures, confined to their folder.
    assert_eq!(
        cfg.audit.fixtures,
        Fixtures::confined_to(crate::assets::root().unwrap().join("fixtures"))
    );
    assert!(
        cfg.interception
            .hosts
            .contains(&"api.openai.com".to_owned())
    );
}

#[test]
fn fixtures_outside_their_folder_are_allowed_only_by_the_audit_key() {
    let dir = dir_with_policy();
    let path = dir.path().join("traceless.toml");
    let cfg = parse(
        &path,
        &format!("{MINIMAL}[audit]\nallow_outside_fixtures = true\n"),
    )
    .unwrap();
    assert!(cfg.audit.fixtures.allow_outside);
    check_err(
        &format!("{MINIMAL}[audit]\nallow_outside_fixtures = \"yes\"\n"),
        "<dir>/traceless.toml:4: invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn placeholders_are_filled() {
    let t = Template::parse("{openai_url}/v1", &service::pipeline_placeholders(&[])).unwrap();
    let values = [("openai_url", "https://127.0.0.1:9".to_owned())].into();
    assert_eq!(t.fill(&values), "https://127.0.0.1:9/v1");
}

#[test]
fn bad_configs_name_file_line_and_key() {
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[pipeline.env]\nA = \"{opneai_url}\"\n",
        "<dir>/traceless.toml:4: `pipeline.env.A`: unknown placeholder `{opneai_url}`; known: {port}, {openai_url}, \
         {gemini_url}, {openai_key}, {gemini_key}, {ca_file}, {gcp_credentials}, {tmpdir}, {workdir}",
    );
    check_err(
        "[policy]\nallowed_providers = [\"openai\", \"anthropic\"]\n[pipeline]\ncommand = [\"x\"]\n",
        "<dir>/traceless.toml:2: `policy.allowed_providers`: unknown provider \"anthropic\"; expected \"openai\" or \"gemini\"",
    );
    check_err(
        "[pipeline]\ncommand = []\n",
        "<dir>/traceless.toml:2: `pipeline.command`: must name a program to run",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\nhealth = \"healthz\"\n",
        "<dir>/traceless.toml:3: `pipeline.health`: must be a path starting with `/`, e.g. \"/healthz\", or \"tcp\" (the port accepts connections)",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n\n[[waiver]]\nkind = \"disk-persistance\"\njustification = \"x\"\nexpires = \"2027-01-01\"\n",
        "<dir>/traceless.toml:5: `waiver.kind`: unknown finding kind \"disk-persistance\"; known: disk-persistence, log-leak, \
         unlisted-egress, memory-retention, provider-retention, personal-data, insecure-transport, child-data, \
         wrong-recipient, cross-request-leak, public-exposure, service-retention",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[[waiver]]\nclause = \"2d\"\njustification = \"x\"\nexpires = \"soon\"\n",
        "<dir>/traceless.toml:6: `waiver.expires`: \"soon\" is not a date like 2027-01-31",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[audit]\nrequired_monitors = [\"memory\", \"gpu\"]\n",
        "<dir>/traceless.toml:4: `audit.required_monitors`: unknown monitor \"gpu\"; known: filesystem, syscall, egress, \
         logs, memory, process-tree",
    );
}

#[test]
fn unknown_keys_and_type_errors_carry_the_line() {
    let dir = dir_with_policy();
    let path = dir.path().join("traceless.toml");
    let err = parse(&path, "[pipeline]\ncommand = [\"x\"]\ncomand = 1\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.message.contains("comand"), "{err}");
    let err = parse(
        &path,
        "[policy]\nmemory_grace_ms = \"soon\"\n[pipeline]\ncommand = [\"x\"]\n",
    )
    .unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn a_missing_policy_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = parse(
        &dir.path().join("t.toml"),
        &format!("[policy]\ntext = \"policy.txt\"\n{MINIMAL}"),
    )
    .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("policy.text"));
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("policy.txt"), "{err}");
}

#[test]
fn a_config_naming_no_policy_scenarios_or_fixtures_gets_the_built_in_ones() {
    // an empty folder: nothing of the repository is next to the config
    let dir = tempfile::tempdir().unwrap();
    let cfg = parse(&dir.path().join("t.toml"), MINIMAL).unwrap();
    let builtin = crate::assets::root().unwrap();
    assert_eq!(cfg.policy.text, builtin.join("policy/privacy-policy.txt"));
    assert_eq!(cfg.policy.clauses, builtin.join("policy/clauses.toml"));
    assert_eq!(cfg.audit.fixtures.dir, builtin.join("fixtures"));
    assert!(cfg.audit.fixtures.dir.join("faces/astronaut.png").is_file());
    let scenarios =
        crate::scenario::load_all(&cfg.dir, &cfg.audit.scenarios, None, &cfg.audit.fixtures)
            .unwrap();
    assert!(scenarios.len() > 30, "{}", scenarios.len());
    let policy = std::fs::read_to_string(&cfg.policy.text).unwrap();
    assert!(
        !crate::clauses::load(&cfg.policy.clauses, &policy)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn builtin_names_resolve_and_unknown_ones_are_errors_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = parse(
        &dir.path().join("t.toml"),
        &format!(
            "{MINIMAL}[audit]\nscenarios = [\"builtin:starter/openai-*.toml\"]\nfixtures = \"builtin:fixtures\"\n"
        ),
    )
    .unwrap();
    let scenarios =
        crate::scenario::load_all(&cfg.dir, &cfg.audit.scenarios, None, &cfg.audit.fixtures)
            .unwrap();
    assert_eq!(scenarios.len(), 4);
    assert!(scenarios.iter().all(|s| s.id.starts_with("openai-")));
    let err = parse(
        &dir.path().join("t.toml"),
        &format!("[policy]\nclauses = \"builtin:policy/clause.toml\"\n{MINIMAL}"),
    )
    .unwrap_err();
    assert_eq!(err.key.as_deref(), Some("policy.clauses"));
    assert_eq!(err.line, Some(2));
    assert!(
        err.message.contains("no built-in \"policy/clause.toml\""),
        "{err}"
    );
}

#[test]
fn relative_command_paths_are_taken_from_the_config_folder() {
    let dir = dir_with_policy();
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(dir.path().join("bin/app.py"), "").unwrap();
    let cfg = parse(
        &dir.path().join("t.toml"),
        "[pipeline]\ncommand = [\"python3\", \"bin/app.py\"]\n",
    )
    .unwrap();
    let arg = cfg.pipeline.command[1].raw();
    assert!(
        Path::new(arg).is_absolute() && arg.ends_with("bin/app.py"),
        "{arg}"
    );
    assert_eq!(cfg.pipeline.command[0].raw(), "python3");
}

#[test]
fn mocks_model_lists_replace_the_defaults() {
    let dir = dir_with_policy();
    let path = dir.path().join("traceless.toml");
    let cfg = parse(&path, MINIMAL).unwrap();
    assert_eq!(cfg.mocks, traceless_mock::ModelRules::default());
    let cfg = parse(
        &path,
        "[pipeline]\ncommand = [\"x\"]\n[mocks]\nopenai_image_models = [\"gpt-image-9*\"]\n\
         gemini_retired_models = []\n",
    )
    .unwrap();
    assert_eq!(cfg.mocks.openai_image, ["gpt-image-9*"]);
    assert!(cfg.mocks.gemini_retired.is_empty());
    assert_eq!(
        cfg.mocks.openai_retired,
        traceless_mock::ModelRules::default().openai_retired
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[mocks]\ngemini_image_models = [\"gemini 3\"]\n",
        "<dir>/traceless.toml:4: `mocks.gemini_image_models`: \"gemini 3\" is not a model name pattern (letters, \
         digits, '.', '-', '_' and '*')",
    );
}

#[test]
fn a_venv_program_keeps_its_venv_path() {
    // A venv's python is a symlink to the base interpreter; resolved, the venv's packages vanish.
    let dir = dir_with_policy();
    std::fs::create_dir_all(dir.path().join("venv/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/python3", dir.path().join("venv/bin/python")).unwrap();
    let cfg = parse(
        &dir.path().join("t.toml"),
        "[pipeline]\ncommand = [\"./venv/bin/python\", \"app.py\"]\n",
    )
    .unwrap();
    assert_eq!(
        Path::new(cfg.pipeline.command[0].raw()),
        dir.path().join("venv/bin/python")
    );
}

#[test]
fn a_fixed_port_is_taken_as_given() {
    let dir = dir_with_policy();
    let path = dir.path().join("traceless.toml");
    let cfg = parse(&path, "[pipeline]\ncommand = [\"x\"]\nport = 8000\n").unwrap();
    assert_eq!(cfg.pipeline.port, Some(8000));
    assert_eq!(parse(&path, MINIMAL).unwrap().pipeline.port, None);
    check_err(
        "[pipeline]\ncommand = [\"x\"]\nport = 0\n",
        "<dir>/traceless.toml:3: `pipeline.port`: must be the port the backend listens on (1-65535), or left out for a \
         free port handed over as {port}",
    );
    let err = parse(&path, "[pipeline]\ncommand = [\"x\"]\nport = 70000\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn a_job_api_is_followed_by_poll_or_events_and_readiness_may_be_tcp() {
    let dir = dir_with_policy();
    let src = "[pipeline]\ncommand = [\"x\"]\nhealth = \"tcp\"\n\
               [pipeline.job]\nid = \"header:Location\"\npoll = \"{job}\"\npoll_interval_ms = 50\n\
               done = [\"succeeded\"]\nfailed = [\"failed\"]\nresult = \"{job}/result\"\n";
    let cfg = parse(&dir.path().join("traceless.toml"), src).unwrap();
    assert_eq!(cfg.pipeline.health, Health::Tcp);
    assert_eq!(
        cfg.pipeline.job,
        Some(JobMapping {
            submit_statuses: vec![201, 202],
            id: JobId::Header("location".into()),
            follow: Follow::Poll {
                route: "{job}".into(),
                interval: Duration::from_millis(50)
            },
            state_pointer: "/status".into(),
            done: vec!["succeeded".into()],
            failed: vec!["failed".into()],
            failed_status: 502,
            result: Some("{job}/result".into()),
        })
    );
    let src = "[pipeline]\ncommand = [\"x\"]\nhealth = \"/\"\nhealth_statuses = [200, 404]\n\
               [pipeline.job]\nsubmit_status = [202]\nid = \"/jobId\"\nevents = \"/v1/jobs/{job}/events\"\n\
               state_pointer = \"/state\"\ndone = [\"done\"]\n";
    let cfg = parse(&dir.path().join("traceless.toml"), src).unwrap();
    assert_eq!(
        cfg.pipeline.health,
        Health::Http {
            path: "/".into(),
            statuses: vec![200, 404]
        }
    );
    let job = cfg.pipeline.job.unwrap();
    assert_eq!(job.submit_statuses, [202]);
    assert_eq!(
        job.follow,
        Follow::Events {
            route: "/v1/jobs/{job}/events".into()
        }
    );
}

#[test]
fn a_bad_job_mapping_names_its_line_and_key() {
    let head = "[pipeline]\ncommand = [\"x\"]\n[pipeline.job]\n";
    check_err(
        &format!("{head}id = \"jobId\"\npoll = \"/j/{{job}}\"\ndone = [\"ok\"]\n"),
        "<dir>/traceless.toml:4: `pipeline.job.id`: \"jobId\": expected a JSON pointer into the submit answer (\"/jobId\") or \"header:NAME\" (\"header:location\")",
    );
    check_err(
        &format!("{head}id = \"/jobId\"\npoll = \"/jobs\"\ndone = [\"ok\"]\n"),
        "<dir>/traceless.toml:5: `pipeline.job.poll`: must contain {job}, which the job's id or URL fills (e.g. \"/v1/jobs/{job}\", or \"{job}\" for a URL taken whole)",
    );
    check_err(
        &format!(
            "{head}id = \"/jobId\"\npoll = \"/j/{{job}}\"\nevents = \"/e/{{job}}\"\ndone = [\"ok\"]\n"
        ),
        "<dir>/traceless.toml:6: `pipeline.job.events`: set either `poll` or `events`, not both",
    );
    check_err(
        &format!("{head}id = \"/jobId\"\ndone = [\"ok\"]\n"),
        "<dir>/traceless.toml:3: `pipeline.job`: needs `poll = \"/route/{job}\"` or `events = \"/route/{job}\"` to follow the job",
    );
    check_err(
        &format!(
            "{head}id = \"/jobId\"\npoll = \"/j/{{job}}\"\ndone = [\"ok\"]\nsubmit_status = [202, 999]\n"
        ),
        "<dir>/traceless.toml:7: `pipeline.job.submit_status`: 999 is not an HTTP status (100-599)",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\nhealth_statuses = []\n",
        "<dir>/traceless.toml:3: `pipeline.health_statuses`: must name at least one HTTP status",
    );
}

#[test]
fn extra_image_parts_are_declared_and_checked() {
    let dir = dir_with_policy();
    let src = "[pipeline]\ncommand = [\"x\"]\n[[pipeline.request.images]]\nfield = \"mask\"\n\
               [[pipeline.request.images]]\nfield = \"reference\"\nformat = \"jpeg\"\nwidth = 32\n";
    let cfg = parse(&dir.path().join("traceless.toml"), src).unwrap();
    let images = &cfg.pipeline.request.extra_images;
    assert_eq!(images.len(), 2);
    assert_eq!((images[0].field.as_str(), images[0].width), ("mask", 64));
    assert_eq!(
        (images[1].format, images[1].width, images[1].height),
        (traceless_scan::canary::ImageFormat::Jpeg, 32, 64)
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[[pipeline.request.images]]\nfield = \"mask\"\nformat = \"gif\"\n",
        "<dir>/traceless.toml:5: `pipeline.request.images.format`: \"gif\": expected \"png\", \"jpeg\" or \"webp\"",
    );
    check_err(
        "[pipeline]\ncommand = [\"x\"]\n[[pipeline.request.images]]\nfield = \"mask\"\nheight = 0\n",
        "<dir>/traceless.toml:5: `pipeline.request.images.height`: 0: expected 1 to 2048 pixels",
    );
}

const POSTGRES: &str = "[[service]]\nname = \"postgresql\"\ncommand = [\"postgres\", \"-D\", \"{data_dir}\", \"-p\", \"{port}\"]\n";

#[test]
fn a_service_is_declared_with_its_commands_and_its_placeholders() {
    let dir = dir_with_policy();
    let source = format!(
        "[pipeline]\ncommand = [\"./backend\"]\n[pipeline.env]\nDATABASE_URL = \"{{service.postgresql.url}}\"\n\
         {POSTGRES}url = \"postgresql://127.0.0.1:{{port}}/app\"\nsetup = [[\"initdb\", \"-D\", \"{{data_dir}}\"]]\n\
         ready = [\"pg_isready\", \"-p\", \"{{port}}\"]\nuser = \"nobody\"\n"
    );
    let cfg = parse(&dir.path().join("traceless.toml"), &source).unwrap();
    let [pg] = cfg.services.as_slice() else {
        panic!("{:?}", cfg.services)
    };
    assert_eq!(pg.name, "postgresql");
    assert_eq!(pg.port, None);
    assert_eq!(pg.user.as_deref(), Some("nobody"));
    assert_eq!(pg.setup.len(), 1);
    assert!(matches!(&pg.ready, ServiceReady::Command(argv) if argv[0].raw() == "pg_isready"));
    let values: BTreeMap<String, String> = [("port".to_owned(), "5433".to_owned())].into();
    assert_eq!(pg.url.fill(&values), "postgresql://127.0.0.1:5433/app");
    assert_eq!(cfg.pipeline.env[0].1.raw(), "{service.postgresql.url}");
    // Without `url`, the address; without `ready`, the port.
    let plain = parse(
        &dir.path().join("traceless.toml"),
        &format!("{MINIMAL}{POSTGRES}port = 5432\n"),
    )
    .unwrap();
    assert_eq!(plain.services[0].url.raw(), "127.0.0.1:{port}");
    assert_eq!(plain.services[0].ready, ServiceReady::Tcp);
    assert_eq!(plain.services[0].port, Some(5432));
}

#[test]
fn a_bad_service_names_its_line_and_key() {
    check_err(
        &format!("{MINIMAL}{POSTGRES}port = 0\n"),
        "<dir>/traceless.toml:6: `service.postgresql.port`: must be the port the service listens on (1-65535), \
         or left out for a free port handed over as {port}",
    );
    check_err(
        &format!("{MINIMAL}{POSTGRES}port = 70000\n"),
        "<dir>/traceless.toml:6: invalid value: integer `70000`, expected u16",
    );
    check_err(
        &format!("{MINIMAL}{POSTGRES}{POSTGRES}"),
        "<dir>/traceless.toml:7: `service.name`: a second [[service]] named \"postgresql\"",
    );
    check_err(
        &format!("{MINIMAL}[pipeline.env]\nDB = \"{{service.postgres.url}}\"\n{POSTGRES}"),
        "<dir>/traceless.toml:4: `pipeline.env.DB`: `{service.postgres.url}` names no [[service]] \"postgres\" \
         (declared: postgresql); a service's placeholders are {service.NAME.port} and {service.NAME.url}",
    );
    check_err(
        &format!("{MINIMAL}[pipeline.env]\nDB = \"{{service.cache.port}}\"\n"),
        "<dir>/traceless.toml:4: `pipeline.env.DB`: `{service.cache.port}` names no [[service]] \"cache\" \
         (none is declared); a service's placeholders are {service.NAME.port} and {service.NAME.url}",
    );
    check_err(
        &format!("{MINIMAL}{POSTGRES}ready = \"http\"\n"),
        "<dir>/traceless.toml:6: `service.postgresql.ready`: must be \"tcp\" (the port accepts connections) or a \
         command that exits 0 once ready, e.g. [\"pg_isready\", \"-h\", \"127.0.0.1\", \"-p\", \"{port}\"]",
    );
    check_err(
        &format!("{MINIMAL}{POSTGRES}init = [[\"psql\", \"{{workdir}}\"]]\n"),
        "<dir>/traceless.toml:6: `service.postgresql.init[0][1]`: unknown placeholder `{workdir}`; known: {port}, \
         {data_dir}, {service.postgresql.port}, {service.postgresql.url}",
    );
    check_err(
        &format!("{MINIMAL}[[service]]\nname = \"my db\"\ncommand = [\"x\"]\n"),
        "<dir>/traceless.toml:4: `service.name`: \"my db\" is not a service name (letters, digits, '-' and '_')",
    );
}

#[test]
fn live_requests_defaults_to_32_and_refuses_zero() {
    let dir = dir_with_policy();
    let cfg = parse(&dir.path().join("traceless.toml"), MINIMAL).unwrap();
    assert_eq!(cfg.audit.live_requests, LIVE_REQUESTS);
    check_err(
        &format!("{MINIMAL}[audit]\nlive_requests = 0\n"),
        "<dir>/traceless.toml:4: `audit.live_requests`: must be at least 1 (the requests whose needles stay in memory)",
    );
}
