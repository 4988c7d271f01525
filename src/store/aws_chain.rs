//! AWS credentials from the SDK's default chain (environment, shared
//! profile files including SSO and `credential_process`, web identity,
//! container and instance metadata), for when a user relies on an AWS
//! profile, which `object_store`'s own chain does not read. It owns only
//! adapting the SDK's provider to `object_store`; it must not cache
//! credentials itself (the SDK refreshes them).

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use object_store::aws::AwsCredential;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Whether the user has an AWS profile that only the SDK's chain reads.
pub fn profile_configured() -> bool {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return false;
    }
    if std::env::var_os("AWS_PROFILE").is_some() {
        return true;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
            .is_some_and(|p| p.exists())
    };
    file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials")
        || file("AWS_CONFIG_FILE", ".aws/config")
}

/// The SDK's default credentials chain, loaded on first use.
#[derive(Debug, Default)]
pub struct AwsChain {
    provider: OnceCell<aws_credential_types::provider::SharedCredentialsProvider>,
}

#[async_trait]
impl object_store::CredentialProvider for AwsChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let provider = self
            .provider
            .get_or_init(|| async {
                let chain =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .build()
                        .await;
                aws_credential_types::provider::SharedCredentialsProvider::new(chain)
            })
            .await;
        let c = provider.provide_credentials().await.map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: format!("no AWS credentials from the default chain (environment, profile, SSO, web identity, instance): {e}").into(),
        })?;
        Ok(Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        }))
    }
}
