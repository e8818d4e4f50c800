//! The texts of the mails kaibiao sends: Chinese first, then English.
//! Times are shown in Asia/Shanghai. No bid contents, ever.

use crate::domain::time::Timestamp;

pub struct Mail {
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

fn shanghai(t: Timestamp) -> String {
    t.to_utc()
        .with_timezone(&crate::domain::time::shanghai())
        .format("%Y-%m-%d %H:%M (UTC+8)")
        .to_string()
}

pub fn verify_email(display_name: &str, link: &str, hours: i64) -> Mail {
    Mail {
        kind: "verify_email",
        subject: "请验证您的电子邮箱 / Verify your e-mail address — kaibiao".into(),
        body: format!(
            "{display_name}，您好：\n\n请在 {hours} 小时内打开以下链接，验证您在开标平台登记的电子邮箱：\n{link}\n\n\
             如果您没有注册，请忽略本邮件。\n\n---\n\n\
             Hello {display_name},\n\nPlease open this link within {hours} hours to verify the e-mail address \
             registered with kaibiao:\n{link}\n\nIf you did not register, ignore this message.\n"
        ),
    }
}

pub struct SectionRef<'a> {
    pub project_name: &'a str,
    pub section_code: &'a str,
    pub section_name: &'a str,
    pub link: &'a str,
}

pub fn amendment(
    s: &SectionRef<'_>,
    number: i32,
    title: &str,
    old: Timestamp,
    new: Timestamp,
) -> Mail {
    let moved_zh = if old != new {
        format!(
            "投标截止（开标）时间由 {} 顺延至 {}。\n",
            shanghai(old),
            shanghai(new)
        )
    } else {
        format!("投标截止（开标）时间不变：{}。\n", shanghai(new))
    };
    let moved_en = if old != new {
        format!(
            "The bid deadline (opening time) moves from {} to {}.\n",
            shanghai(old),
            shanghai(new)
        )
    } else {
        format!(
            "The bid deadline (opening time) is unchanged: {}.\n",
            shanghai(new)
        )
    };
    Mail {
        kind: "amendment",
        subject: format!(
            "【澄清/修改 第{number}号】{} {} / Amendment no. {number}",
            s.project_name, s.section_code
        ),
        body: format!(
            "您已获取招标文件的标段发布了第 {number} 号澄清/修改：{title}\n项目：{}\n标段：{} {}\n{moved_zh}详情：{}\n\n---\n\n\
             Amendment no. {number} was published for a section you registered for: {title}\n\
             Project: {}\nSection: {} {}\n{moved_en}Details: {}\n",
            s.project_name, s.section_code, s.section_name, s.link,
            s.project_name, s.section_code, s.section_name, s.link,
        ),
    }
}

pub fn cancelled(s: &SectionRef<'_>, reason: &str) -> Mail {
    Mail {
        kind: "cancelled",
        subject: format!("【终止公告】{} {} / Section cancelled", s.project_name, s.section_code),
        body: format!(
            "您已获取招标文件的标段已终止。\n项目：{}\n标段：{} {}\n原因：{reason}\n详情：{}\n\n---\n\n\
             A section you registered for was cancelled.\nProject: {}\nSection: {} {}\nReason: {reason}\nDetails: {}\n",
            s.project_name, s.section_code, s.section_name, s.link,
            s.project_name, s.section_code, s.section_name, s.link,
        ),
    }
}

pub fn failed(s: &SectionRef<'_>, reason: &str) -> Mail {
    Mail {
        kind: "failed",
        subject: format!("【流标公告】{} {} / Tender failed", s.project_name, s.section_code),
        body: format!(
            "您已获取招标文件的标段流标。\n项目：{}\n标段：{} {}\n原因：{reason}\n详情：{}\n\n---\n\n\
             A section you registered for failed at the opening.\nProject: {}\nSection: {} {}\nReason: {reason}\nDetails: {}\n",
            s.project_name, s.section_code, s.section_name, s.link,
            s.project_name, s.section_code, s.section_name, s.link,
        ),
    }
}

/// The award notice (中标通知书) to the winning bidder.
pub fn award_notice(s: &SectionRef<'_>, price: &str, score: &str) -> Mail {
    Mail {
        kind: "award_notice",
        subject: format!("【中标通知书】{} {} / Notice of award", s.project_name, s.section_code),
        body: format!(
            "经评标委员会评审并公示期满，贵单位为以下标段的中标人。\n项目：{}\n标段：{} {}\n中标价：{price} 元\n综合得分：{score}\n详情：{}\n\n---\n\n\
             After evaluation and publicity, your company is awarded this section.\nProject: {}\nSection: {} {}\nAwarded price: {price} yuan\nScore: {score}\nDetails: {}\n",
            s.project_name, s.section_code, s.section_name, s.link,
            s.project_name, s.section_code, s.section_name, s.link,
        ),
    }
}

/// The result notice (中标结果通知书) to every other bidder.
pub fn result_notice(s: &SectionRef<'_>, winner: &str) -> Mail {
    Mail {
        kind: "result_notice",
        subject: format!("【中标结果通知】{} {} / Result of the tender", s.project_name, s.section_code),
        body: format!(
            "您参与投标的标段已确定中标人。\n项目：{}\n标段：{} {}\n中标人：{winner}\n详情：{}\n\n---\n\n\
             The section you bid for has been awarded.\nProject: {}\nSection: {} {}\nAwarded to: {winner}\nDetails: {}\n",
            s.project_name, s.section_code, s.section_name, s.link,
            s.project_name, s.section_code, s.section_name, s.link,
        ),
    }
}
