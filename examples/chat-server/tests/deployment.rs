//! Opening a deployment: the identity key is kept only wrapped, the passphrase is checked, and
//! an offline open creates nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use std::path::Path;

use secrecy::SecretString;
use zt_chat_server::deployment::{Deployment, DeploymentError, OpenMode, Passphrase};

fn given(text: &str) -> Passphrase {
    Passphrase::Given(SecretString::from(text))
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_identity_key_is_on_disk_only_wrapped_and_comes_back_the_same() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let passphrase = given("a long enough test passphrase");
    let deployment = Deployment::open(&dir, &passphrase, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    assert!(deployment.identity().was_created());
    // Given directly, no passphrase file is written.
    assert!(deployment.generated_passphrase().is_none());
    let seed = deployment.identity().signing_key().to_seed();
    let fingerprint = deployment.identity().fingerprint();
    deployment.close().await.unwrap();

    let disk = all_bytes(&dir);
    assert!(
        !contains(&disk, &seed[..]),
        "the raw identity seed is on disk"
    );
    assert!(!contains(&disk, hex::encode(seed).as_bytes()));
    assert!(!contains(&disk, b"a long enough test passphrase"));
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1);

    let again = Deployment::open(&dir, &passphrase, OpenMode::Existing)
        .await
        .unwrap();
    assert!(!again.identity().was_created());
    assert_eq!(again.identity().fingerprint(), fingerprint);
    again.close().await.unwrap();
}

#[tokio::test]
async fn passphrases_are_checked_before_anything_is_read() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    // An operator's passphrase file (with its line break) creates the KMS on first start.
    let file = root.path().join("secret");
    std::fs::write(&file, "operator chosen passphrase\n").unwrap();
    let deployment = Deployment::open(&dir, &Passphrase::File(file), OpenMode::CreateIfMissing)
        .await
        .unwrap();
    assert!(deployment.generated_passphrase().is_none());
    deployment.close().await.unwrap();
    // The same passphrase given directly opens it; another does not.
    Deployment::open(
        &dir,
        &given("operator chosen passphrase"),
        OpenMode::Existing,
    )
    .await
    .unwrap()
    .close()
    .await
    .unwrap();
    let wrong = Deployment::open(&dir, &given("some other passphrase"), OpenMode::Existing)
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, DeploymentError::WrongPassphrase(_)),
        "{wrong}"
    );
    let short = Deployment::open(&dir, &given("short"), OpenMode::Existing)
        .await
        .unwrap_err();
    assert!(
        matches!(short, DeploymentError::BadPassphrase(_)),
        "{short}"
    );
    // A KMS exists, so a missing passphrase file is an error, never a new passphrase.
    let missing = root.path().join("missing");
    let err = Deployment::open(
        &dir,
        &Passphrase::File(missing.clone()),
        OpenMode::CreateIfMissing,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeploymentError::MissingPassphrase { .. }),
        "{err}"
    );
    assert!(!missing.exists());
}

#[tokio::test]
async fn a_first_start_generates_the_passphrase_file_and_offline_opens_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let file = Passphrase::default_file(&dir);
    let offline = Deployment::open(&dir, &Passphrase::File(file.clone()), OpenMode::Existing)
        .await
        .unwrap_err();
    assert!(
        matches!(offline, DeploymentError::NoDataDir(_)),
        "{offline}"
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

    let deployment = Deployment::open(
        &dir,
        &Passphrase::File(file.clone()),
        OpenMode::CreateIfMissing,
    )
    .await
    .unwrap();
    assert_eq!(deployment.generated_passphrase(), Some(file.as_path()));
    deployment.close().await.unwrap();
    let generated = std::fs::read_to_string(&file).unwrap();
    let reopened = Deployment::open(&dir, &given(generated.trim_end()), OpenMode::Existing)
        .await
        .unwrap();
    assert!(reopened.generated_passphrase().is_none());
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_service_runs_on_the_deployment_and_its_data_survives_a_reopen() {
    use std::sync::Arc;
    use zt_authz::ChannelVisibility;
    use zt_chat::{Chat, ChatConfig, PageRequest};
    use zt_core::identity::{NewUser, PasswordConfig};

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let passphrase = given("a long enough test passphrase");
    let config = || ChatConfig {
        password: PasswordConfig {
            m_cost_kib: 64,
            t_cost: 1,
            allow_weak: true,
            ..PasswordConfig::default()
        },
        ..ChatConfig::default()
    };
    let chat_over = |deployment: &Deployment| {
        let deps = deployment.chat_deps(
            Arc::new(zt_core::testing::NullSink),
            Arc::new(zt_core::testing::NullSink),
            Arc::new(zt_core::InProcessBus::default()),
        );
        Chat::new(deps, config()).unwrap()
    };
    let password = SecretString::from("violet kettle rides at dawn");
    let deployment = Deployment::open(&dir, &passphrase, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let chat = chat_over(&deployment);
    let owner = NewUser {
        username: "ada".into(),
        email: None,
        display_name: "Ada Canary-Display-5150".into(),
    };
    let (workspace, _) = chat.bootstrap("Acme", owner, &password).await.unwrap();
    let tenant = workspace.tenant();
    let (_, ada) = workspace.login("ada", &password, None).await.unwrap();
    let room = workspace
        .create_channel(&ada, "canary-room-2718", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .post(&ada, room.id, "canary-text-3141", None, &[])
        .await
        .unwrap();
    drop(workspace);
    drop(chat);
    deployment.close().await.unwrap();

    // Nothing of it is readable on disk.
    let disk = all_bytes(&dir);
    for canary in [
        "canary-room-2718",
        "canary-text-3141",
        "Canary-Display-5150",
    ] {
        assert!(!contains(&disk, canary.as_bytes()), "{canary} is on disk");
    }

    // Reopened with the same passphrase, the workspace and its message are there.
    let deployment = Deployment::open(&dir, &passphrase, OpenMode::Existing)
        .await
        .unwrap();
    let chat = chat_over(&deployment);
    let workspace = chat.workspace(tenant).await.unwrap();
    let (_, ada) = workspace.login("ada", &password, None).await.unwrap();
    let page = workspace
        .messages(&ada, room.id, PageRequest::Latest { limit: 10 })
        .await
        .unwrap();
    assert_eq!(page.messages[0].body, "canary-text-3141");
    drop(workspace);
    drop(chat);
    deployment.close().await.unwrap();
}
