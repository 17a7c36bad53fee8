//! A Lambda Runtime API on loopback that runs a real function binary, as Lambda does: the
//! binary polls `/runtime/invocation/next`, we hand it events and collect its responses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// What a function answered: its response, or the error it reported to the runtime.
pub type Outcome = Result<Value, Value>;

/// The time an invocation is given unless a test says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<Value>>,
    /// The time each invocation is given (Lambda's deadline header).
    timeout: Mutex<Duration>,
}

/// One function process under its own Runtime API.
pub struct Function {
    events: mpsc::UnboundedSender<(String, Vec<u8>)>,
    shared: Arc<Shared>,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    counter: u64,
}

/// The workspace's build of a function binary (`cargo build` puts it in target/<profile>).
pub fn binary(name: &str, profile: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p {name}`), as the README's test command does",
        path.display()
    );
    path
}

impl Function {
    /// Starts `binary` with `env` (plus the variables Lambda sets) under a fresh Runtime API.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> Function {
        let (events, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            timeout: Mutex::new(DEFAULT_TIMEOUT),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let api = crate::serve(app).await;

        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.trim_start_matches("http://"))
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("function binary starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        Function {
            events,
            shared,
            child,
            output,
            counter: 0,
        }
    }

    /// Kills the process at once (a container lost mid-invocation).
    pub fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    /// The next invocations get `timeout` before their deadline.
    pub fn set_timeout(&self, timeout: Duration) {
        *self.shared.timeout.lock().unwrap() = timeout;
    }

    /// Sends one event and waits for the function's answer; a process that dies instead
    /// answers `Err({"processExited": ...})`.
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        self.invoke_raw(serde_json::to_vec(event).unwrap()).await
    }

    pub async fn invoke_raw(&mut self, event: Vec<u8>) -> Outcome {
        self.counter += 1;
        let id = format!("request-{}", self.counter);
        let (sender, receiver) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .unwrap()
            .insert(id.clone(), sender);
        self.events.send((id, event)).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::select! {
                outcome = receiver => outcome.ok(),
                status = self.child.wait() => Some(Err(serde_json::json!({
                    "processExited": status.map(|s| s.to_string()).unwrap_or_default()
                }))),
            }
        })
        .await;
        match answer {
            Ok(Some(outcome)) => outcome,
            _ => panic!(
                "function gave no answer within 60 s (init error: {:?}); its output:\n{}",
                self.shared.init_error.lock().unwrap(),
                self.output().join("\n")
            ),
        }
    }

    /// Everything the process wrote to stdout and stderr so far, one entry per line.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// A live view of the output, readable while an invocation is under way.
    pub fn output_log(&self) -> Arc<Mutex<Vec<String>>> {
        self.output.clone()
    }

    /// Peak resident set size of the process (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time the process has used so far (user and system), from `/proc/<pid>/stat`.
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) start after its ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // The kernel's USER_HZ is 100 on every Linux Lambda and CI runs on.
        Some(Duration::from_millis(ticks * 10))
    }

    /// Waits until the process has written a line containing `needle`; used to observe log
    /// output that is written after the response was returned.
    pub async fn wait_for_output(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.output().iter().any(|line| line.contains(needle)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let Some((id, body)) = shared.next.lock().await.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), Vec::new());
    };
    let timeout = *shared.timeout.lock().unwrap();
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + timeout;
    let mut headers = HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.as_millis().to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:local"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (StatusCode::OK, headers, body)
}

fn settle(shared: &Shared, id: &str, outcome: Outcome) {
    if let Some(sender) = shared.waiting.lock().unwrap().remove(id) {
        let _ = sender.send(outcome);
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Ok(json_or_text(&body)));
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Err(json_or_text(&body)));
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap() = Some(json_or_text(&body));
    StatusCode::ACCEPTED
}
