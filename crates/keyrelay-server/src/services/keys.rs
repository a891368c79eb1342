//! Checks over every stored secret, for `keyrelay keys verify` and rotation tests.

use crate::app::App;
use crate::error::ServiceResult;
use crate::vault::Field;

/// The outcome of decrypting every sealed field in the database.
#[derive(Debug, Default)]
pub struct SecretsReport {
    pub checked: usize,
    /// `table/row/field` of each secret that did not decrypt.
    pub failed: Vec<String>,
}

/// Decrypts every stored secret (project webhook secrets, integration client
/// secrets) and reports those that fail.
pub async fn verify_secrets(app: &App) -> ServiceResult<SecretsReport> {
    let mut report = SecretsReport::default();
    let mut check = async |field: Field<'_>, bytes: &[u8]| {
        report.checked += 1;
        if app.vault.open_field(field, bytes).await.is_err() {
            report
                .failed
                .push(format!("{}/{}/{}", field.table, field.row_id, field.field));
        }
    };
    for project in app.store.list_projects().await? {
        check(
            Field::new("projects", &project.id, "webhook_secret"),
            &project.webhook_secret,
        )
        .await;
    }
    for integration in app.store.list_all_integrations().await? {
        if let Some(secret) = &integration.client_secret {
            check(
                Field::new("integrations", &integration.id, "client_secret"),
                secret,
            )
            .await;
        }
    }
    Ok(report)
}
