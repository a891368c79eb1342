//! Projects (tenants) and their secret keys.

use chrono::Utc;
use keyrelay_store::{Project, SecretKeyRecord, StoreError};
use keyrelay_vault::{ProjectSecretKey, TokenHash, WebhookSecret, token};

use crate::app::App;
use crate::error::{ServiceError, ServiceResult};
use crate::services::{auth::SECRET_KEY_PREFIX, validate};
use crate::vault::Field;

/// What a new project needs.
#[derive(Debug, Default)]
pub struct NewProject {
    pub name: String,
    pub allowed_redirect_urls: Vec<String>,
    pub webhook_url: Option<String>,
}

/// A project just made, with the secrets that are shown only now.
#[derive(Debug)]
pub struct CreatedProject {
    pub project: Project,
    pub secret_key_id: String,
    pub secret_key: ProjectSecretKey,
    pub webhook_secret: WebhookSecret,
}

/// Changes to a project; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProjectPatch {
    pub allowed_redirect_urls: Option<Vec<String>>,
    /// `Some(None)` removes the webhook URL.
    pub webhook_url: Option<Option<String>>,
}

fn check_urls(urls: &[String]) -> ServiceResult<Vec<String>> {
    if urls.len() > 100 {
        return Err(ServiceError::invalid(
            "invalid_request",
            "allowed_redirect_urls: at most 100 URLs are accepted",
        ));
    }
    urls.iter()
        .map(|u| validate::http_url("allowed_redirect_urls", u))
        .collect()
}

pub async fn create(app: &App, input: NewProject) -> ServiceResult<CreatedProject> {
    let name = validate::project_name(&input.name)?;
    let allowed_redirect_urls = check_urls(&input.allowed_redirect_urls)?;
    let webhook_url = input
        .webhook_url
        .as_deref()
        .map(|u| validate::http_url("webhook_url", u))
        .transpose()?;
    let id = token::generate_id("prj_");
    let webhook_secret = token::webhook_secret();
    let sealed = app.vault.seal(
        Field::new("projects", &id, "webhook_secret"),
        webhook_secret.expose_secret().as_bytes(),
    );
    let now = Utc::now();
    let project = Project {
        id,
        name,
        allowed_redirect_urls,
        webhook_url,
        webhook_secret: sealed,
        created_at: now,
        updated_at: now,
    };
    app.store
        .insert_project(&project)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::conflict(
                "project_exists",
                format!(
                    "a project named {:?} exists already; pick another name",
                    project.name
                ),
            ),
            other => other.into(),
        })?;
    let (secret_key_id, secret_key) = create_secret_key(app, &project.id).await?;
    Ok(CreatedProject {
        project,
        secret_key_id,
        secret_key,
        webhook_secret,
    })
}

pub async fn list(app: &App) -> ServiceResult<Vec<Project>> {
    Ok(app.store.list_projects().await?)
}

pub async fn get(app: &App, id: &str) -> ServiceResult<Project> {
    app.store
        .get_project(id)
        .await?
        .ok_or_else(|| unknown_project(id))
}

pub async fn update(app: &App, id: &str, patch: ProjectPatch) -> ServiceResult<Project> {
    let mut project = get(app, id).await?;
    if let Some(urls) = patch.allowed_redirect_urls {
        project.allowed_redirect_urls = check_urls(&urls)?;
    }
    if let Some(url) = patch.webhook_url {
        project.webhook_url = url
            .as_deref()
            .map(|u| validate::http_url("webhook_url", u))
            .transpose()?;
    }
    project.updated_at = Utc::now();
    app.store.update_project(&project).await?;
    Ok(project)
}

/// Makes a new secret key for a project; the key is returned once and only
/// its hash is stored.
pub async fn create_secret_key(
    app: &App,
    project_id: &str,
) -> ServiceResult<(String, ProjectSecretKey)> {
    get(app, project_id).await?;
    let key = ProjectSecretKey::new(token::generate_token(SECRET_KEY_PREFIX));
    let record = SecretKeyRecord {
        id: token::generate_id("sk_"),
        project_id: project_id.to_string(),
        hash: TokenHash::of(key.expose_secret()).as_bytes().to_vec(),
        created_at: Utc::now(),
    };
    app.store.insert_secret_key(&record).await?;
    Ok((record.id, key))
}

pub async fn list_secret_keys(app: &App, project_id: &str) -> ServiceResult<Vec<SecretKeyRecord>> {
    get(app, project_id).await?;
    Ok(app.store.list_secret_keys(project_id).await?)
}

pub async fn delete_secret_key(app: &App, project_id: &str, key_id: &str) -> ServiceResult<()> {
    get(app, project_id).await?;
    app.proxy_cache.forget_keys();
    if app.store.delete_secret_key(project_id, key_id).await? {
        Ok(())
    } else {
        Err(ServiceError::not_found(
            "unknown_secret_key",
            format!("project {project_id} has no secret key {key_id:?}"),
        ))
    }
}

/// The project's webhook signing secret, decrypted.
pub async fn webhook_secret(app: &App, project: &Project) -> ServiceResult<WebhookSecret> {
    let text = app
        .vault
        .open_string(
            Field::new("projects", &project.id, "webhook_secret"),
            &project.webhook_secret,
        )
        .await?;
    Ok(WebhookSecret::new(text.as_str()))
}

fn unknown_project(id: &str) -> ServiceError {
    ServiceError::not_found(
        "unknown_project",
        format!("no project has the id {id:?}; list projects with GET /v1/admin/projects"),
    )
}
