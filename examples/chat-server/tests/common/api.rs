//! A JSON client of the HTTP API for the server's tests (shared by `api.rs` and
//! `backup_drill.rs`).
#![allow(
    clippy::unwrap_used,
    dead_code,
    unreachable_pub,
    reason = "test helpers report failures by panicking; not every test uses every helper"
)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The API of one running server.
pub struct Api {
    /// `http://ADDR`.
    pub base: String,
    /// The client.
    pub http: reqwest::Client,
}

impl Api {
    /// A client of the server at `addr`.
    pub fn new(addr: &str) -> Self {
        Api {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// One request with an optional bearer token and JSON body: the status and the JSON answer
    /// (`Null` when it is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The newest page of an audit log (`security` or `compliance`) and its events' kinds.
    pub async fn audit(&self, token: &str, log: &str) -> (Value, Vec<String>) {
        let path = format!("/api/v1/admin/audit/{log}?limit=1000");
        let (status, page) = self.call(Method::GET, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let kinds = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect();
        (page, kinds)
    }

    /// Uploads `bytes` as file `name` to `channel`; the file's record.
    pub async fn upload(&self, token: &str, channel: &str, name: &str, bytes: Vec<u8>) -> Value {
        let uploaded = self
            .http
            .post(format!(
                "{}/api/v1/channels/{channel}/files?name={name}",
                self.base
            ))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(uploaded.status(), StatusCode::CREATED);
        uploaded.json().await.unwrap()
    }

    /// Signs in; the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/sessions",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}
