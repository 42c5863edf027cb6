//! `leadboard reload`: asks the running service, through its control socket beside the
//! database, to read its configuration file again, and prints its answer. The service
//! reads the file itself, with its own environment and secrets; this command reads only
//! `database.url` and `server.control_socket`, to find the service. Exit status 0: reloaded (or nothing changed);
//! 2: the file has problems or changes what may not change, nothing changed; 1: the
//! service could not be reached or failed.

use crate::config::Settings;
use crate::local;
use std::path::Path;
use std::process::ExitCode;

pub async fn run(config: Option<&Path>) -> ExitCode {
    let socket = match config {
        Some(path) => Settings::control_socket_in(path),
        None => local::settings().map(|s| s.control_socket()),
    };
    let socket = match socket {
        Ok(socket) => socket,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    ask(&socket).await
}

#[cfg(unix)]
async fn ask(socket: &Path) -> ExitCode {
    use crate::control::{self, Outcome};
    match control::ask(socket, "reload").await {
        Ok(answer) => match answer.outcome {
            Outcome::Reloaded => {
                crate::cli::line(answer.text);
                ExitCode::SUCCESS
            }
            Outcome::Refused => {
                eprintln!("{}", answer.text);
                ExitCode::from(2)
            }
            Outcome::Failed => {
                eprintln!("错误：{}", answer.text);
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!(
                "错误：无法连接运行中的服务（{}：{e}）。服务是否正在运行、并使用这个配置的数据库？\
                 也可以向服务进程发送 SIGHUP（systemctl reload leadboard），结果见服务日志。",
                socket.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(unix))]
async fn ask(_socket: &Path) -> ExitCode {
    eprintln!("错误：此平台不支持 leadboard reload；请重启服务。");
    ExitCode::FAILURE
}
