# tasks.py
from celeriac import Celery

# 创建Celery实例
app = Celery('myapp',
             broker='redis://localhost:6379/0',  # 消息代理
             backend='redis://localhost:6379/1',  # 结果后端
             include=['myapp.tasks'])  # 任务模块列表

# 配置Celery
app.conf.update(
    result_expires=3600,  # 结果过期时间(秒)
    task_serializer='json',  # 任务序列化格式
    accept_content=['json'],  # 接受的内容类型
    result_serializer='json',  # 结果序列化格式
    timezone='Asia/Shanghai',  # 时区
    enable_utc=True,  # 使用UTC时间
)


# 定义一个任务
@app.task
def add(x, y):
    return x + y


# --- Elided by the seed: the helpers its task bodies call (4.1, 6.1, 6.5, 8.2). ---
def do_image_processing(image_path):
    return f'processed:{image_path}'


def send_mail(recipient, subject, body):
    if recipient.startswith('flaky'):
        raise ConnectionError('mail server busy')


class TemporaryError(Exception):
    pass


def upload_file(filename):
    # Fails on the first two attempts (counted in a file: retries may run in any child).
    with open(filename + '.attempts', 'a+') as fh:
        fh.write('x')
        fh.seek(0)
        if len(fh.read()) < 3:
            raise TemporaryError(filename)


def process_with_algorithm_a(image_path):
    raise ValueError('algorithm a cannot read ' + image_path)


def process_with_algorithm_b(image_path):
    return 'b:' + image_path


def log_to_sentry(task_id, exc, traceback):
    print(f'sentry: {task_id} {exc!r}', flush=True)


def notify_admin(task_id, exc):
    print(f'admin notified: {task_id}', flush=True)


def fetch_logs(date):
    return [f'{date} alice login', f'{date} bob login', f'{date} alice logout']


def analyze_user_behavior(logs):
    users = {}
    for line in logs:
        user = line.split()[1]
        users[user] = users.get(user, 0) + 1
    return users


class db:
    @staticmethod
    def save_stats(stats):
        print(f'saved stats: {sorted(stats.items())}', flush=True)


@app.task
def sum_results(numbers):
    return sum(numbers)
# --- end of what the seed elides ---


# 4.1 定义任务
@app.task
def process_image(image_path):
    # 处理图像的代码
    result = do_image_processing(image_path)
    return result


@app.task(bind=True, max_retries=3, default_retry_delay=60)
def send_email(self, recipient, subject, body):
    try:
        send_mail(recipient, subject, body)
    except Exception as exc:
        self.retry(exc=exc)  # 失败时重试


# 4.2 任务参数
@app.task(bind=True,  # 绑定任务实例(self)
          name='tasks.process_data',  # 任务名称
          max_retries=5,  # 最大重试次数
          default_retry_delay=30,  # 默认重试延迟(秒)
          rate_limit='10/m',  # 速率限制(每分钟10个)
          ignore_result=True,  # 忽略结果
          time_limit=60,  # 执行时间限制(秒)
          soft_time_limit=45,  # 软时间限制(发送中断信号)
          queue='high_priority',  # 指定队列
          )
def process_data(self, data):
    # 处理数据的代码
    pass


# 6.5 错误处理: 1. 重试
@app.task(bind=True, max_retries=3)
def process_upload(self, filename):
    try:
        upload_file(filename)
    except TemporaryError as exc:
        # 指数退避重试
        raise self.retry(exc=exc, countdown=2**self.request.retries)


# 6.5 错误处理: 2. 失败回退 (the seed's second process_image, renamed to keep both)
@app.task
def process_image_with_fallback(image_path):
    try:
        result = process_with_algorithm_a(image_path)
    except Exception:
        # 尝试备用算法
        result = process_with_algorithm_b(image_path)
    return result


# 6.5 错误处理: 3. 全局错误处理
@app.task
def error_handler(task_id, exc, traceback):
    # 自定义错误处理逻辑
    log_to_sentry(task_id, exc, traceback)
    notify_admin(task_id, exc)


# 8.2 数据处理流水线
@app.task
def extract_logs(date):
    logs = fetch_logs(date)
    return logs


@app.task
def transform_logs(logs):
    user_stats = analyze_user_behavior(logs)
    return user_stats


@app.task
def load_to_database(stats):
    db.save_stats(stats)
    return True


if __name__ == '__main__':
    app.start()
