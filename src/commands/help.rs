//! `帮助`: the commands the sender may use, generated from the command table and the
//! permission table.

use crate::commands::table::{COMMANDS, CommandId};
use crate::service::access::{self, Operation, Role};
use crate::service::{Ctx, Outcome};

pub fn text(ctx: &Ctx<'_>) -> Outcome {
    let person = ctx.authorize(Operation::Help)?;
    let mut lines = vec![format!("{}，您可以发送以下命令（字段写成 键=值，用空格、逗号或换行分隔）：", person.name)];
    let mut role = None;
    let allowed = COMMANDS.iter().filter(|c| access::allows(ctx.settings, person, c.id.operation()));
    for spec in allowed.filter(|c| c.id != CommandId::Help) {
        if role != Some(spec.role()) && spec.role() != Role::Everyone {
            lines.push(format!("\n【{}】", spec.role().label()));
        }
        role = Some(spec.role());
        // Everyone's commands with what they do; the roles' own, which their holders
        // know, by their usage only (the whole list must fit one message).
        if spec.role() == Role::Everyone {
            lines.push(format!("· {}\n  {}", spec.summary, spec.short_usage()));
        } else {
            lines.push(format!("· {}", spec.short_usage()));
        }
    }
    lines.push("\n例如：C类 公司=杭州云帆科技有限公司 联系人=王经理".into());
    Ok(lines.join("\n"))
}
