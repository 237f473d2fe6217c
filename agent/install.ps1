<#
.SYNOPSIS
  install.ps1: register this Windows server with AWS Systems Manager through the activation broker.

.DESCRIPTION
  The Windows twin of install.sh (same steps, same options, same exit codes); Windows PowerShell
  5.1 and PowerShell 7. Run as Administrator:

    & ([scriptblock]::Create((Invoke-RestMethod 'https://BROKER/install.ps1')))
    & ([scriptblock]::Create((Invoke-RestMethod 'https://BROKER/install.ps1?pool=web'))) -Proxy http://proxy:3128

  It asks the broker for an Activation ID + Code, downloads AmazonSSMAgentSetup.exe from the
  activation's regional bucket, checks its Authenticode signature (valid, signed by Amazon),
  installs it with CODE, ID and REGION, and prints the managed-node id. A server that is already
  registered is left alone (exit 0) unless -Force; an installed agent is never reinstalled.
  This script is reviewed, not executed, in CI (no PowerShell there); test/agent checks that it
  stays in step with install.sh.

  Exit codes (install.sh uses the same numbers):
     0  OK                    registered now, or already registered; -Help; -DryRun
     1  FAILURE               unexpected error
     2  USAGE                 bad option or value
     3  NOT_ROOT              must run as Administrator
     4  UNSUPPORTED           operating system or architecture not supported
    10  BROKER_UNREACHABLE    broker unreachable or still busy (429/5xx) when the retry budget ran out
    11  BROKER_REJECTED       broker refused the request (4xx, e.g. 404 PoolNotFound)
    12  BROKER_BAD_ANSWER     broker answer unusable (not JSON, field missing or malformed)
    20  INSTALL_FAILED        agent download, signature check or installation failed
    21  REGISTRATION_FAILED   SSM refused the registration (e.g. InvalidActivation, ActivationExpired)
    22  SERVICE_FAILED        agent service not started, or registration file not written

  Sources: hybrid install on Windows (AmazonSSMAgentSetup.exe /q /log F CODE= ID= REGION=, from
  https://amazon-ssm-<region>.s3.<region>.amazonaws.com/latest/windows_amd64/):
  https://docs.aws.amazon.com/systems-manager/latest/userguide/hybrid-multicloud-ssm-agent-install-windows.html
  Agent proxy on Windows (service Environment value):
  https://docs.aws.amazon.com/systems-manager/latest/userguide/configure-proxy-ssm-agent-windows.html
#>
[CmdletBinding()]
param(
  # Broker base URL (env BROKER_URL; filled in when served by the broker). https only; http for loopback.
  [string]$Url = $(if ($env:BROKER_URL) { $env:BROKER_URL } else { '__BROKER_URL__' }),
  # Activation pool, [A-Za-z0-9_-]{1,64} (env BROKER_POOL); default pool if empty.
  [string]$Pool = $(if ($env:BROKER_POOL) { $env:BROKER_POOL } else { '__BROKER_POOL__' }),
  # Override the region the broker answers with.
  [string]$Region = '',
  # PEM CA certificates to verify the broker's TLS certificate with (broker only; never disables checks).
  [string]$CaBundle = '',
  # HTTP(S) proxy for the broker, the download and the agent service (default: $env:HTTPS_PROXY).
  [string]$Proxy = $(if ($env:HTTPS_PROXY) { $env:HTTPS_PROXY } else { '' }),
  # Comma-separated hosts the agent reaches directly (169.254.169.254 is always added).
  [string]$NoProxy = '',
  # Re-register even if already registered (the agent is never uninstalled).
  [switch]$Force,
  # Total seconds to keep retrying a busy or unreachable broker.
  [int]$MaxWait = 300,
  # Print the plan and change nothing (the broker is not called: every answer reserves a registration).
  [switch]$DryRun,
  [switch]$Help
)
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$EXIT_OK = 0
$EXIT_FAILURE = 1
$EXIT_USAGE = 2
$EXIT_NOT_ROOT = 3
$EXIT_UNSUPPORTED = 4
$EXIT_BROKER_UNREACHABLE = 10
$EXIT_BROKER_REJECTED = 11
$EXIT_BROKER_BAD_ANSWER = 12
$EXIT_INSTALL_FAILED = 20
$EXIT_REGISTRATION_FAILED = 21
$EXIT_SERVICE_FAILED = 22

# An unrendered copy still holds the markers: treat as unset.
if ($Url -like '__BROKER_*__') { $Url = '' }
if ($Pool -like '__BROKER_*__') { $Pool = '' }

$RegFile = Join-Path $env:ProgramData 'Amazon\SSM\InstanceData\registration'
$AgentExe = Join-Path $env:ProgramFiles 'Amazon\SSM\amazon-ssm-agent.exe'
$ServiceName = 'AmazonSSMAgent'

function Write-Log([string]$Message) { [Console]::Error.WriteLine("install.ps1: $Message") }
function Stop-Install([int]$Code, [string]$Message) {
  [Console]::Error.WriteLine("install.ps1: error: $Message")
  exit $Code
}
function Get-Safe([string]$Text) { if (-not $Text) { return '' }; $t = $Text -replace '[^\x20-\x7E]', ' '; return $t.Substring(0, [Math]::Min(300, $t.Length)) }

if ($Help) { Get-Help -Detailed $PSCommandPath 2>$null; if (-not $PSCommandPath) { Write-Output 'See the header of install.ps1 for the options.' }; exit $EXIT_OK }

# --- arguments -------------------------------------------------------------------------------
if (-not $Url) { Stop-Install $EXIT_USAGE 'no broker URL: pass -Url, or download this script from the broker (GET /install.ps1)' }
if ($Url -notmatch '^https?://[\[\]A-Za-z0-9.:-]+(/[A-Za-z0-9._~%/-]*)?$') { Stop-Install $EXIT_USAGE '-Url must look like https://host[:port][/path]' }
$Loopback = $Url -match '^http://(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?(/|$)'
if ($Url -like 'http://*' -and -not $Loopback) { Stop-Install $EXIT_USAGE '-Url must use https (the answer holds a secret); plain http is accepted for loopback only' }
$Url = $Url.TrimEnd('/')
if ($Pool -and $Pool -notmatch '^[A-Za-z0-9_-]{1,64}$') { Stop-Install $EXIT_USAGE '-Pool must match [A-Za-z0-9_-]{1,64}' }
$RegionPattern = '^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$'
if ($Region -and $Region -cnotmatch $RegionPattern) { Stop-Install $EXIT_USAGE "-Region '$Region' is not a region name" }
if ($CaBundle -and -not (Test-Path -LiteralPath $CaBundle -PathType Leaf)) { Stop-Install $EXIT_USAGE "-CaBundle '$CaBundle' is not a readable file" }
if ($Proxy -and $Proxy -notmatch '^https?://[^\s"\\]+$') { Stop-Install $EXIT_USAGE '-Proxy must look like http://host:port' }
if ($NoProxy -notmatch '^[A-Za-z0-9.,:*/_-]*$') { Stop-Install $EXIT_USAGE '-NoProxy must be a comma-separated host list' }
if ($MaxWait -lt 0) { Stop-Install $EXIT_USAGE '-MaxWait must be a whole number of seconds' }

# --- platform --------------------------------------------------------------------------------
if ([Environment]::OSVersion.Platform -ne 'Win32NT') { Stop-Install $EXIT_UNSUPPORTED 'install.ps1 is for Windows; use install.sh on Linux' }
$Machine = if ($env:PROCESSOR_ARCHITEW6432) { $env:PROCESSOR_ARCHITEW6432 } else { $env:PROCESSOR_ARCHITECTURE }
if ($Machine -ne 'AMD64') { Stop-Install $EXIT_UNSUPPORTED "unsupported architecture '$Machine' (supported: AMD64)" }
$Folder = 'windows_amd64'
function Get-DownloadUrl([string]$R) { "https://amazon-ssm-$R.s3.$R.amazonaws.com/latest/$Folder/AmazonSSMAgentSetup.exe" }
$Endpoint = if ($Pool) { "$Url/activations/$Pool" } else { "$Url/" }

function Get-RegisteredId {
  if (-not (Test-Path -LiteralPath $RegFile)) { return $null }
  try { $id = (Get-Content -LiteralPath $RegFile -Raw | ConvertFrom-Json).ManagedInstanceID } catch { return $null }
  if ($id -cmatch '^mi-[0-9a-f]{17}$') { return $id } else { return $null }
}

# --- broker ----------------------------------------------------------------------------------
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
$TlsCallback = $null
if ($CaBundle) {
  # A compiled callback: a script block would run on a thread without a runspace.
  Add-Type -TypeDefinition @'
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
public static class BrokerTls {
  public static X509Certificate2Collection Roots = new X509Certificate2Collection();
  public static bool Validate(object sender, X509Certificate cert, X509Chain chain, SslPolicyErrors errors) {
    if (errors == SslPolicyErrors.None) return true;
    if (errors != SslPolicyErrors.RemoteCertificateChainErrors || cert == null) return false; // a name mismatch is never accepted
    var own = new X509Chain();
    own.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
    own.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
    own.ChainPolicy.ExtraStore.AddRange(Roots);
    if (!own.Build(new X509Certificate2(cert))) return false;
    var root = own.ChainElements[own.ChainElements.Count - 1].Certificate;
    foreach (var r in Roots) { if (r.Thumbprint == root.Thumbprint) return true; }
    return false;
  }
}
'@
  $pem = Get-Content -LiteralPath $CaBundle -Raw
  foreach ($m in [regex]::Matches($pem, '-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----')) {
    [void][BrokerTls]::Roots.Add((New-Object System.Security.Cryptography.X509Certificates.X509Certificate2(, [Convert]::FromBase64String(($m.Groups[1].Value -replace '\s', '')))))
  }
  if ([BrokerTls]::Roots.Count -eq 0) { Stop-Install $EXIT_USAGE "-CaBundle '$CaBundle' holds no PEM certificate" }
  $TlsCallback = [System.Delegate]::CreateDelegate([System.Net.Security.RemoteCertificateValidationCallback], [BrokerTls].GetMethod('Validate'))
}

function Invoke-Broker([string]$Uri) {
  $request = [System.Net.HttpWebRequest]::Create($Uri)
  $request.Method = 'GET'; $request.Accept = 'application/json'; $request.AllowAutoRedirect = $false
  $request.UserAgent = 'ssm-activation-broker-install/1 (windows)'; $request.Timeout = 30000; $request.ReadWriteTimeout = 30000
  if ($Proxy) { $request.Proxy = New-Object System.Net.WebProxy($Proxy, $true) }
  if ($TlsCallback) { $request.ServerCertificateValidationCallback = $TlsCallback }
  $response = $null
  try { $response = $request.GetResponse() } catch {
    $e = $_.Exception
    while ($e -and -not ($e -is [System.Net.WebException])) { $e = $e.InnerException }
    if ($e -and $e.Response) { $response = $e.Response } else { return @{ Status = 0; Body = ''; RetryAfter = ''; Error = (Get-Safe $_.Exception.Message) } }
  }
  try {
    $reader = New-Object System.IO.StreamReader($response.GetResponseStream())
    return @{ Status = [int]$response.StatusCode; Body = $reader.ReadToEnd(); RetryAfter = "$($response.Headers['Retry-After'])"; Error = '' }
  } finally { $response.Close() }
}

function Get-ErrorSummary([string]$Body) {
  try { $e = ($Body | ConvertFrom-Json).error; if ($e.code) { return ", $(Get-Safe $e.code): $(Get-Safe $e.message)" } } catch { }
  return ''
}

# Capped exponential backoff with "equal jitter", in ms; same defaults as install.sh.
function Get-BackoffMs([int]$Attempt) {
  $ceiling = [Math]::Min(30000, 1000 * [Math]::Pow(2, [Math]::Min($Attempt - 1, 15)))
  $half = [int]($ceiling / 2)
  return $half + (Get-Random -Minimum 0 -Maximum ($half + 1))
}

function Get-Activation {
  $started = Get-Date; $attempt = 0
  while ($true) {
    $attempt++
    $answer = Invoke-Broker $Endpoint
    $status = $answer.Status
    if ($status -eq 200) {
      try { $pair = $answer.Body | ConvertFrom-Json } catch { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer is not JSON' }
      $answer = $null
      if ("$($pair.ActivationId)" -cnotmatch '^[A-Za-z0-9-]{1,64}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ActivationId' }
      if ("$($pair.ActivationCode)" -cnotmatch '^[A-Za-z0-9+/=]{8,250}$') { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid ActivationCode' }
      $r = if ($Region) { $Region } else { "$($pair.Region)" }
      if ($r -cnotmatch $RegionPattern) { Stop-Install $EXIT_BROKER_BAD_ANSWER 'broker answer has no valid Region (pass -Region to override)' }
      return @{ Id = "$($pair.ActivationId)"; Code = "$($pair.ActivationCode)"; Region = $r }
    }
    $retryAfter = 0
    if ($status -eq 0) { $reason = "cannot reach the broker at ${Endpoint}: $($answer.Error)" }
    elseif ($status -eq 429 -or $status -eq 503) { $reason = "broker busy (HTTP $status$(Get-ErrorSummary $answer.Body))"; [void][int]::TryParse($answer.RetryAfter, [ref]$retryAfter) }
    elseif ($status -eq 500 -or $status -eq 502 -or $status -eq 504) { $reason = "broker failed (HTTP $status$(Get-ErrorSummary $answer.Body))" }
    elseif ($status -ge 400 -and $status -lt 500) { Stop-Install $EXIT_BROKER_REJECTED "broker refused the request GET $Endpoint (HTTP $status$(Get-ErrorSummary $answer.Body))" }
    else { Stop-Install $EXIT_BROKER_BAD_ANSWER "unexpected answer from the broker GET $Endpoint (HTTP $status)" }
    $delayMs = if ($retryAfter -gt 0) { $retryAfter * 1000 } else { Get-BackoffMs $attempt }
    $elapsedMs = ((Get-Date) - $started).TotalMilliseconds
    if ($elapsedMs + $delayMs -gt $MaxWait * 1000) { Stop-Install $EXIT_BROKER_UNREACHABLE "$reason; giving up after $attempt attempt(s) in $([int]($elapsedMs / 1000))s (-MaxWait $MaxWait)" }
    Write-Log "$reason; retrying in $($delayMs / 1000)s (attempt $attempt)"
    Start-Sleep -Milliseconds $delayMs
  }
}

function Set-AgentProxy {
  if (-not $Proxy) { return }
  $noProxy = '169.254.169.254' + $(if ($NoProxy) { ",$NoProxy" } else { '' })
  Set-ItemProperty -Path "HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName" -Name Environment -Type MultiString `
    -Value @("http_proxy=$Proxy", "https_proxy=$Proxy", "no_proxy=$noProxy")
  Write-Log "agent proxy set to $($Proxy -replace '//[^@/]*@', '//***@') in the $ServiceName service environment"
}

# --- main ------------------------------------------------------------------------------------
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $DryRun -and -not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { Stop-Install $EXIT_NOT_ROOT 'run as Administrator' }
# Two runs at once (a startup task and a GPO script) must not both take a registration.
$mutex = New-Object System.Threading.Mutex($false, 'Global\ssm-activation-broker-install')
if (-not $DryRun) { try { [void]$mutex.WaitOne(900000) } catch [System.Threading.AbandonedMutexException] { } }

$existing = Get-RegisteredId
if ($existing -and -not $Force) { Write-Log "already registered as managed node $existing; nothing to do (-Force re-registers)"; Write-Output $existing; exit $EXIT_OK }
$installed = Test-Path -LiteralPath $AgentExe
if ($DryRun) {
  $r = if ($Region) { $Region } else { '{region}' }
  Write-Output 'Plan (dry run: nothing is changed and the broker is not called):'
  Write-Output "  platform:  Windows $([Environment]::OSVersion.Version), arch $Machine"
  Write-Output "  broker:    GET $Endpoint"
  Write-Output "  region:    $(if ($Region) { $Region } else { 'from the broker answer' })"
  if ($existing) { Write-Output "  current:   registered as $existing; -Force: clear and re-register" }
  if ($installed) { Write-Output "  register:  amazon-ssm-agent.exe -register -code *** -id <id> -region $r -y$(if ($Force) { ' -clear' })" }
  else { Write-Output "  install:   $(Get-DownloadUrl $r) (Authenticode: Valid, signed by Amazon) /q CODE=*** ID=<id> REGION=$r" }
  if ($Proxy) { Write-Output "  proxy:     $($Proxy -replace '//[^@/]*@', '//***@') in HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName Environment" }
  Write-Output "  service:   start $ServiceName (automatic)"
  Write-Output "  verify:    $RegFile holds ManagedInstanceID"
  exit $EXIT_OK
}

$work = Join-Path ([IO.Path]::GetTempPath()) ('ssm-install-' + [Guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $work | Out-Null
try {
  if ($Proxy) { $env:https_proxy = $Proxy; $env:http_proxy = $Proxy; $env:no_proxy = "169.254.169.254$(if ($NoProxy) { ",$NoProxy" })" }
  Set-PSDebug -Off   # tracing would print the code (the "set +x" of install.sh)
  $pair = Get-Activation
  Write-Log "got activation $($pair.Id) (region $($pair.Region)$(if ($Pool) { ", pool $Pool" }))"
  if ($installed) {
    Write-Log "agent already installed at ${AgentExe}: registering it (never reinstalled)"
    Stop-Service -Name $ServiceName -ErrorAction SilentlyContinue
    $flags = @('-register', '-code', $pair.Code, '-id', $pair.Id, '-region', $pair.Region, '-y')
    if ($Force) { $flags += '-clear' }
    # The agent takes the code only as an argument: it is in its argv for this one call.
    $out = (& $AgentExe @flags 2>&1 | Out-String).Replace($pair.Code, '***')
    $rc = $LASTEXITCODE
    $flags = $null
    Write-Log $out.Trim()
    if ($rc -ne 0) { Stop-Install $EXIT_REGISTRATION_FAILED "the agent could not register (exit $rc)" }
  } else {
    $exe = Join-Path $work 'AmazonSSMAgentSetup.exe'
    $source = Get-DownloadUrl $pair.Region
    Write-Log "downloading $source"
    $download = @{ Uri = $source; OutFile = $exe; UseBasicParsing = $true }
    if ($Proxy) { $download.Proxy = $Proxy }
    try { Invoke-WebRequest @download } catch { Stop-Install $EXIT_INSTALL_FAILED "cannot download ${source}: $(Get-Safe $_.Exception.Message)" }
    $signature = Get-AuthenticodeSignature -FilePath $exe
    $signer = if ($signature.SignerCertificate) { $signature.SignerCertificate.Subject } else { '' }
    if ($signature.Status -ne 'Valid' -or $signer -notmatch '(^|,\s*)O="?Amazon(\.com)?[ ,."]') {
      Stop-Install $EXIT_INSTALL_FAILED "AmazonSSMAgentSetup.exe signature is not valid or not Amazon's (status $($signature.Status), signer '$signer'): not running it"
    }
    Write-Log "Authenticode signature valid ($signer)"
    $installLog = Join-Path $work 'install.log'
    $process = Start-Process -FilePath $exe -Wait -PassThru -ArgumentList @('/q', '/log', $installLog, "CODE=$($pair.Code)", "ID=$($pair.Id)", "REGION=$($pair.Region)")
    if ($process.ExitCode -ne 0) {
      # The installer may log its command line: the copy kept for the operator has the code masked.
      if (Test-Path -LiteralPath $installLog) { (Get-Content -LiteralPath $installLog -Raw).Replace($pair.Code, '***') | Set-Content -LiteralPath "$work.log" }
      if (Test-Path -LiteralPath $AgentExe) { Stop-Install $EXIT_REGISTRATION_FAILED "the agent was installed but did not register (exit $($process.ExitCode)); log: $work.log" }
      Stop-Install $EXIT_INSTALL_FAILED "AmazonSSMAgentSetup.exe failed (exit $($process.ExitCode)); log: $work.log"
    }
  }
  $pair = $null
  Set-AgentProxy
  Set-Service -Name $ServiceName -StartupType Automatic
  Restart-Service -Name $ServiceName
  if ((Get-Service -Name $ServiceName).Status -ne 'Running') { Stop-Install $EXIT_SERVICE_FAILED "the $ServiceName service is not running" }
  $id = Get-RegisteredId
  if (-not $id) { Stop-Install $EXIT_SERVICE_FAILED "registration reported success but $RegFile holds no ManagedInstanceID" }
  Write-Log "registered as managed node $id"
  Write-Output $id
  exit $EXIT_OK
} catch {
  Stop-Install $EXIT_FAILURE (Get-Safe $_.Exception.Message)
} finally {
  $pair = $null
  Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
  if (-not $DryRun) { try { $mutex.ReleaseMutex() } catch { } }
}
