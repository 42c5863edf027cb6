//! `帮助`: the commands the sender may use, generated from the command table.

use crate::commands::Ctx;
use crate::commands::table::{COMMANDS, CommandId, Role};

pub fn text(ctx: &Ctx<'_>) -> String {
    let mut lines =
        vec![format!("{}，您可以发送以下命令（字段写成 键=值，用空格、逗号或换行分隔）：", ctx.sender.name)];
    let mut role = None;
    for spec in COMMANDS.iter().filter(|c| ctx.may(c.role) && c.id != CommandId::Help) {
        if role != Some(spec.role) && spec.role != Role::Everyone {
            lines.push(format!("\n【{}】", spec.role.label()));
        }
        role = Some(spec.role);
        lines.push(format!("· {}\n  {}", spec.summary, spec.usage()));
    }
    lines.push("\n例如：C类 公司=杭州云帆科技有限公司 联系人=王经理".into());
    lines.join("\n")
}
